"""Local training of one FL round, and evaluation.

:func:`local_train` starts from the global model, runs ``epochs`` epochs of mini-batch SGD
(momentum optional) over the local data, optionally with the FedProx proximal term
``(mu / 2) ||w - w_global||^2``, and returns the update ``delta = w_local - w_global`` as a flat
float32 vector (the input of secure aggregation) with the losses the controller needs: the loss
of the *global* model on the local data (FAL weights, DESIGN section 6) and the training loss.

Torch runs one intra-op thread per agent process by default (``$TESTBED_TORCH_THREADS``), since
several agents share a few cores; call :func:`configure_torch` once at start-up.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from edge_agent.models import parameters_to_vector, vector_to_parameters

__all__ = [
    "THREADS_ENV",
    "TrainResult",
    "configure_torch",
    "evaluate",
    "local_train",
]

#: Environment variable with the number of torch threads per agent process.
THREADS_ENV = "TESTBED_TORCH_THREADS"

ArrayLike = Union[np.ndarray, torch.Tensor]

_EVAL_BATCH = 256


def configure_torch(threads: Optional[int] = None) -> int:
    """Set torch's intra-op threads (``threads``, else ``$TESTBED_TORCH_THREADS``, else 1).

    Also sets one inter-op thread where torch still allows it (before any parallel work).
    Returns the number of intra-op threads now in use.
    """
    if threads is None:
        threads = int(os.environ.get(THREADS_ENV, "1"))
    if threads < 1:
        raise ValueError(f"`threads` must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set, or parallel work has started
        torch.set_num_interop_threads(1)
    return torch.get_num_threads()


def warm_up() -> None:
    """Pay torch's one-off costs now rather than in the first round: the first optimizer
    imports ``torch._dynamo`` (0.9 s on this repository's 2-core machine, 3-4 s with six
    agents starting together), and the first backward pass sets up autograd's engine."""
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.0)
    (w * 2.0).sum().backward()
    opt.step()


@dataclass(frozen=True)
class TrainResult:
    """What one round of local training produced.

    Attributes:
        delta: ``[P], float32``, ``w_local - w_global`` in :func:`parameters_to_vector` order.
        loss_before: mean cross-entropy of the global model on the local data (FAL's ``L_u``).
        loss_after: mean training cross-entropy over the last epoch (without the proximal
            term), or, with ``exact_loss_after``, the trained model's loss on the local data.
        samples: local dataset size (FedAvg weight ``p_u``).
        seconds: wall time of the SGD loop alone, s (the ``T^comp`` of DESIGN section 5).
        samples_processed: ``epochs * samples`` (``D_u`` of the energy model).
        eval_seconds: wall time spent computing the losses outside the SGD loop, s.
    """

    delta: np.ndarray
    loss_before: float
    loss_after: float
    samples: int
    seconds: float
    samples_processed: int = 0
    eval_seconds: float = 0.0


def _as_tensors(x: ArrayLike, y: ArrayLike) -> Tuple[torch.Tensor, torch.Tensor]:
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    if xt.ndim != 4:
        raise ValueError(f"`x` must be [N, C, H, W], got shape {tuple(xt.shape)}")
    if yt.shape != (xt.shape[0],):
        raise ValueError(f"`y` must have shape ({xt.shape[0]},), got {tuple(yt.shape)}")
    return xt, yt


def evaluate(
    model: nn.Module, x: ArrayLike, y: ArrayLike, batch_size: int = _EVAL_BATCH
) -> Tuple[float, float]:
    """Accuracy (fraction in [0, 1]) and mean cross-entropy of ``model`` on ``x``, ``y``.

    Args:
        x: ``[N, C, H, W], float32`` inputs; y: ``[N], int64`` labels.
    """
    xt, yt = _as_tensors(x, y)
    n = xt.shape[0]
    if n == 0:
        raise ValueError("`x` is empty")
    was_training = model.training
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for i in range(0, n, batch_size):
            logits = model(xt[i : i + batch_size])
            target = yt[i : i + batch_size]
            loss_sum += float(functional.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(dim=1) == target).sum())
    model.train(was_training)
    return correct / n, loss_sum / n


def local_train(
    model: nn.Module,
    x: ArrayLike,
    y: ArrayLike,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    lr: float = 0.05,
    momentum: float = 0.0,
    fedprox_mu: float = 0.0,
    global_vector: Optional[np.ndarray] = None,
    seed: int = 0,
    weight_decay: float = 0.0,
    exact_loss_after: bool = False,
    loss_before: bool = True,
) -> TrainResult:
    """Train ``model`` in place from the global model on the local data; return the update.

    Args:
        model: the architecture; overwritten with ``global_vector`` first when one is given,
            else its current parameters are taken as the global model.
        x: ``[N, C, H, W], float32`` local inputs; y: ``[N], int64`` labels.
        epochs: local epochs (>= 1).
        batch_size: mini-batch size (>= 1); the last, smaller batch of an epoch is kept.
        lr: SGD learning rate; momentum: SGD momentum in [0, 1).
        fedprox_mu: FedProx ``mu`` (>= 0); 0 is plain FedAvg local training.
        global_vector: ``[P], float32`` global parameters (see :mod:`edge_agent.models`).
        seed: seeds the order of the mini-batches (and torch, for dropout).
        weight_decay: L2 weight decay of SGD.
        exact_loss_after: evaluate the trained model on the local data for ``loss_after``
            (one more forward pass) instead of averaging the last epoch's training loss.
        loss_before: evaluate the global model on the local data first (one forward pass);
            False leaves ``loss_before`` NaN, for a caller that computes it elsewhere.
    """
    if epochs < 1:
        raise ValueError(f"`epochs` must be at least 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}")
    if fedprox_mu < 0:
        raise ValueError(f"`fedprox_mu` must be non-negative, got {fedprox_mu}")
    xt, yt = _as_tensors(x, y)
    n = xt.shape[0]
    if n == 0:
        raise ValueError("`x` is empty: no local data to train on")
    if global_vector is not None:
        vector_to_parameters(global_vector, model)
    w0 = parameters_to_vector(model)
    anchors = [p.detach().clone() for p in model.parameters()] if fedprox_mu > 0 else []

    t0 = time.perf_counter()
    before = evaluate(model, xt, yt)[1] if loss_before else float("nan")
    eval_seconds = time.perf_counter() - t0

    rng = np.random.default_rng(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    model.train()
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(n))
            epoch_loss = 0.0
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                opt.zero_grad(set_to_none=True)
                loss = functional.cross_entropy(model(xt[idx]), yt[idx])
                loss.backward()
                if fedprox_mu > 0:  # gradient of (mu/2)||w - w_global||^2
                    with torch.no_grad():
                        for p, a in zip(model.parameters(), anchors):
                            if p.grad is not None:
                                p.grad.add_(p - a, alpha=fedprox_mu)
                opt.step()
                epoch_loss += float(loss.detach()) * len(idx)
    seconds = time.perf_counter() - t0

    loss_after = epoch_loss / n
    if exact_loss_after:
        t0 = time.perf_counter()
        _, loss_after = evaluate(model, xt, yt)
        eval_seconds += time.perf_counter() - t0
    delta = parameters_to_vector(model) - w0
    return TrainResult(
        delta=delta.astype(np.float32, copy=False),
        loss_before=before,
        loss_after=loss_after,
        samples=int(n),
        seconds=seconds,
        samples_processed=int(n) * epochs,
        eval_seconds=eval_seconds,
    )
