"""Partitions: disjoint, covering, deterministic, skewed as specified."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.data import PartitionError, label_histogram, partition_indices
from edge_agent.data.partition import PartitionSpec
from protocol.spec import DirichletPartition, IIDPartition, LabelSkewPartition

_LABELS = np.random.default_rng(7).integers(0, 10, size=6000)


def _disjoint_cover(parts: list[np.ndarray], n: int) -> tuple[bool, bool]:
    allidx = np.concatenate(parts)
    return len(np.unique(allidx)) == len(allidx), np.array_equal(np.sort(allidx), np.arange(n))


@pytest.mark.parametrize(
    "spec",
    [
        IIDPartition(),
        DirichletPartition(kind="dirichlet", alpha=0.5),
        LabelSkewPartition(kind="label_skew", classes_per_client=2),
    ],
)
def test_disjoint_cover_and_deterministic(spec: PartitionSpec) -> None:
    parts = partition_indices(_LABELS, 6, spec, seed=3)
    assert len(parts) == 6
    assert all(p.dtype == np.int64 and np.all(np.diff(p) > 0) for p in parts)
    disjoint, cover = _disjoint_cover(parts, len(_LABELS))
    assert disjoint
    assert cover
    again = partition_indices(_LABELS, 6, spec, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=False))
    other = partition_indices(_LABELS, 6, spec, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=False))


def test_iid_sizes_are_equal_and_classes_balanced() -> None:
    parts = partition_indices(_LABELS, 6, IIDPartition(), seed=0)
    assert {len(p) for p in parts} == {1000}
    hist = label_histogram(_LABELS, parts, 10)
    assert hist.min() > 60  # about 100 of each class per client


def _skew(alpha: float, seed: int = 0) -> float:
    parts = partition_indices(
        _LABELS, 10, DirichletPartition(kind="dirichlet", alpha=alpha), seed=seed
    )
    hist = label_histogram(_LABELS, parts, 10).astype(float)
    frac = hist / hist.sum(axis=1, keepdims=True)
    return float(np.mean(frac.max(axis=1)))  # mean share of each client's top class


def test_dirichlet_skew_grows_as_alpha_shrinks() -> None:
    s_big, s_mid, s_small = _skew(100.0), _skew(1.0), _skew(0.1)
    assert s_big < 0.2  # nearly uniform: about 1/10
    assert s_big < s_mid < s_small
    assert s_small > 0.5


def test_label_skew_gives_each_client_its_classes() -> None:
    parts = partition_indices(
        _LABELS, 5, LabelSkewPartition(kind="label_skew", classes_per_client=2), seed=1
    )
    hist = label_histogram(_LABELS, parts, 10)
    assert all(int((row > 0).sum()) == 2 for row in hist)


def test_samples_per_client_cap_and_min_samples() -> None:
    parts = partition_indices(_LABELS, 6, IIDPartition(), seed=0, samples_per_client=300)
    assert [len(p) for p in parts] == [300] * 6
    assert _disjoint_cover(parts, len(_LABELS))[0]
    with pytest.raises(PartitionError, match="min_samples"):
        partition_indices(_LABELS, 6, IIDPartition(), seed=0, min_samples=1001)
    with pytest.raises(PartitionError, match="classes_per_client"):
        partition_indices(
            _LABELS, 2, LabelSkewPartition(kind="label_skew", classes_per_client=11), seed=0
        )


def test_dirichlet_min_samples_is_met_by_redrawing() -> None:
    parts = partition_indices(
        _LABELS, 20, DirichletPartition(kind="dirichlet", alpha=0.1), seed=2, min_samples=50
    )
    assert min(len(p) for p in parts) >= 50
