"""Seeded, deterministic partitions of a labelled dataset over FL clients.

The controller and every agent call :func:`partition_indices` with the same labels, spec and seed
and get the same split, so no index list travels on the wire. Only PCG64 ``permutation``,
``integers`` and ``standard_gamma`` are used (the Dirichlet draw is built from gammas rather
than ``Generator.dirichlet``, whose algorithm NumPy changed for small alphas), so boards with an
older NumPy compute the same split.

Kinds (``protocol.spec.Partition``):

- ``iid``: a random permutation cut into equal parts;
- ``dirichlet(alpha)``: for each class, client shares drawn from Dirichlet(alpha); clients that
  already hold their fair share ``N / n`` stop receiving (as in NIID-Bench), so sizes stay
  bounded; small alpha gives more skew;
- ``label_skew(classes_per_client=k)``: client ``i`` holds the classes ``perm[(i k + j) mod K]``,
  ``j < k``, of a seeded class permutation; each class is split evenly among its holders. Every
  class has a holder, so every sample is used, when ``n k >= K``.

``samples_per_client`` then caps each client at that many samples (a random subset, so class
proportions are kept in expectation).

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

from typing import List, Optional, Union

import numpy as np

from protocol.spec import DirichletPartition, IIDPartition, LabelSkewPartition

__all__ = ["PartitionError", "label_histogram", "partition_indices"]

PartitionSpec = Union[IIDPartition, DirichletPartition, LabelSkewPartition]

_DIRICHLET_ATTEMPTS = 100


class PartitionError(ValueError):
    """No partition satisfies the constraints (e.g. ``min_samples``)."""


def _iid(n_samples: int, n_clients: int, rng: np.random.Generator) -> List[np.ndarray]:
    return list(np.array_split(rng.permutation(n_samples), n_clients))


def _dirichlet_shares(alpha: float, n: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_gamma(alpha, size=n)
    total = g.sum()
    if total <= 0.0:  # every gamma underflowed (alpha tiny): all mass on one client
        g = np.zeros(n)
        g[rng.integers(n)] = 1.0
        total = 1.0
    return g / total


def _dirichlet_once(
    labels: np.ndarray, n_clients: int, alpha: float, rng: np.random.Generator
) -> List[np.ndarray]:
    fair = len(labels) / n_clients
    parts: List[List[int]] = [[] for _ in range(n_clients)]
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        shares = _dirichlet_shares(alpha, n_clients, rng)
        open_ = np.array([len(p) < fair for p in parts], dtype=float)
        if (shares * open_).sum() > 0:
            shares = shares * open_
        shares = shares / shares.sum()
        cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
        for part, chunk in zip(parts, np.split(idx, cuts)):
            part.extend(chunk.tolist())
    return [np.asarray(p, dtype=np.int64) for p in parts]


def _label_skew(
    labels: np.ndarray, n_clients: int, k: int, rng: np.random.Generator
) -> List[np.ndarray]:
    classes = np.unique(labels)
    if k > len(classes):
        raise PartitionError(
            f"`classes_per_client` ({k}) exceeds the {len(classes)} classes in the labels"
        )
    order = classes[rng.permutation(len(classes))]
    held = [[order[(i * k + j) % len(classes)] for j in range(k)] for i in range(n_clients)]
    parts: List[List[int]] = [[] for _ in range(n_clients)]
    for c in classes:
        holders = [i for i in range(n_clients) if c in held[i]]
        if not holders:
            continue
        idx = rng.permutation(np.flatnonzero(labels == c))
        for i, chunk in zip(holders, np.array_split(idx, len(holders))):
            parts[i].extend(chunk.tolist())
    return [np.asarray(p, dtype=np.int64) for p in parts]


def partition_indices(
    labels: np.ndarray,
    n_clients: int,
    partition: PartitionSpec,
    seed: int,
    samples_per_client: Optional[int] = None,
    min_samples: int = 1,
) -> List[np.ndarray]:
    """Split sample indices over ``n_clients`` clients.

    Args:
        labels: ``[N], int``, class label of each sample.
        n_clients: number of clients (>= 1).
        partition: an ``IIDPartition``, ``DirichletPartition`` or ``LabelSkewPartition``
            (``protocol.spec``).
        seed: seed of the split; the same arguments always give the same split.
        samples_per_client: cap on each client's samples (``DatasetSpec.samples_per_client``).
        min_samples: every client must end with at least this many samples
            (``DatasetSpec.min_samples_per_client``); Dirichlet splits are redrawn up to
            100 times to meet it.

    Returns:
        ``n_clients`` sorted, pairwise disjoint ``int64`` index arrays.

    Raises:
        PartitionError: a client ends with fewer than ``min_samples`` samples.
        ValueError: an argument out of range (the message names it).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"`labels` must be one-dimensional, got shape {labels.shape}")
    if n_clients < 1:
        raise ValueError(f"`n_clients` must be at least 1, got {n_clients}")
    if samples_per_client is not None and samples_per_client < 1:
        raise ValueError(f"`samples_per_client` must be at least 1, got {samples_per_client}")
    if min_samples < 0:
        raise ValueError(f"`min_samples` must be non-negative, got {min_samples}")
    rng = np.random.default_rng(seed)
    if isinstance(partition, IIDPartition):
        parts = _iid(len(labels), n_clients, rng)
    elif isinstance(partition, DirichletPartition):
        for _ in range(_DIRICHLET_ATTEMPTS):
            parts = _dirichlet_once(labels, n_clients, partition.alpha, rng)
            if min(len(p) for p in parts) >= min_samples:
                break
    elif isinstance(partition, LabelSkewPartition):
        parts = _label_skew(labels, n_clients, partition.classes_per_client, rng)
    else:
        raise ValueError(f"`partition` of unknown kind {type(partition).__name__}")
    if samples_per_client is not None:
        parts = [
            p if len(p) <= samples_per_client else rng.permutation(p)[:samples_per_client]
            for p in parts
        ]
    sizes = [len(p) for p in parts]
    if min(sizes) < min_samples:
        raise PartitionError(
            f"partition `{partition.kind}` of {len(labels)} samples over {n_clients} clients "
            f"leaves client {int(np.argmin(sizes))} with {min(sizes)} samples, fewer than "
            f"`min_samples` ({min_samples}); use fewer clients or a larger alpha"
        )
    return [np.sort(p).astype(np.int64) for p in parts]


def label_histogram(labels: np.ndarray, parts: List[np.ndarray], num_classes: int) -> np.ndarray:
    """``[n_clients, num_classes], int64``: how many samples of each class each client holds."""
    return np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])
