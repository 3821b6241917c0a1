"""Local training of many virtual clients at once: the agents' SGD, batched with ``torch.func``.

Every client of a chunk trains its own copy of the global model; the copies are stacked
(``[C, ...]`` per parameter) and one ``vmap`` over ``grad`` of the model's
``functional_call`` takes a step for all of them together. Step ``k`` of client ``u`` uses the
mini-batch :func:`edge_agent.training.local_train` would use: its samples in the order of
``numpy.random.default_rng(seed).permutation(n_u)`` (one permutation per epoch), ``batch_size``
at a time, the last batch smaller; a client whose epoch has no ``k``-th batch sits that step
out (its parameters and momentum stay as they are). The update rule is torch's SGD (momentum,
no dampening, weight decay) plus FedProx's proximal gradient ``mu (w - w_global)``, so each
client's ``delta = w_local - w_global`` equals the agent's to float32 rounding.

Models with dropout (``cifar_cnn``) draw their masks with ``randomness="different"``: the
same distribution as the agent, not the same draws.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional

from edge_agent.models import build_model
from simulator.stacked import StackedChain

__all__ = ["BatchedTrainer", "SGDConfig"]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: One client's input shape per model (``[C, H, W]``).
_INPUT_SHAPE = {"mnist_cnn": (1, 28, 28), "cifar_cnn": (3, 32, 32), "wifi_mlp": (1, 4, 4)}
#: Samples per forward (and backward) pass of the shared global model (256 ran fastest here:
#: 22.9k samples/s forward on 2 cores, against 15.2k with 4096).
_EVAL_BATCH = 256
#: Items (chunks, batches) per worker below which a call stays on the calling thread.
_POOL_MIN_ITEMS = 16


@dataclass(frozen=True)
class SGDConfig:
    """The local training of one round (the ``fl:`` section of the spec).

    Attributes:
        epochs: local epochs (>= 1); batch_size: mini-batch size (>= 1).
        lr: learning rate; momentum: SGD momentum in [0, 1); weight_decay: L2 decay.
        fedprox_mu: FedProx ``mu`` (0: FedAvg local training).
        seed: the seed of the mini-batch order (the agent's ``seed * 100003 + round``).
    """

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    fedprox_mu: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"`epochs` must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1, got {self.batch_size}")
        if self.fedprox_mu < 0:
            raise ValueError(f"`fedprox_mu` must be non-negative, got {self.fedprox_mu}")


class BatchedTrainer:
    """Trains chunks of clients of one model architecture from a flat global vector.

    Args:
        model_name: ``mnist_cnn`` or ``cifar_cnn`` (:func:`edge_agent.models.build_model`).
        chunk: clients trained together in one ``vmap`` (memory grows with it: about
            ``4 * chunk * P`` bytes per copy of the parameters, several copies in flight).
        workers: threads that train chunks (and score batches) side by side, each running
            torch on one intra-op thread; 1: everything on the calling thread, with its
            torch threads. On 2 cores two workers with chunks of 4 trained the MNIST CNN
            about 20% faster than one thread with torch on both cores (small grouped
            convolutions leave intra-op threads idle). Results do not depend on it: every
            chunk is computed alone and the sums are taken in chunk order. Models that are
            not a stacked chain train on the calling thread.
    """

    def __init__(self, model_name: str, *, chunk: int = 8, workers: int = 1) -> None:
        if chunk < 1:
            raise ValueError(f"`chunk` must be at least 1, got {chunk}")
        if workers < 1:
            raise ValueError(f"`workers` must be at least 1, got {workers}")
        self.model: nn.Module = build_model(model_name)
        self.chunk = chunk
        self._names = [k for k, _ in self.model.named_parameters()]
        self._shapes = [tuple(p.shape) for _, p in self.model.named_parameters()]
        self._sizes = [int(np.prod(s)) for s in self._shapes]
        self.dim = int(sum(self._sizes))
        self._randomness = "different" if _has_dropout(self.model) else "error"
        self._step_grad = self._make_grad()
        example = torch.randn(2, *_INPUT_SHAPE[model_name])
        try:
            self._stacked: StackedChain | None = StackedChain(self.model, example)
        except ValueError:  # not a chain of stackable layers: vmap does it
            self._stacked = None
        self._workers = workers
        self._pool = (
            ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,))
            if workers > 1
            else None
        )
        if self._pool is not None:  # a trainer dropped without close() frees its threads
            weakref.finalize(self, self._pool.shutdown, wait=False)

    def _map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``fn`` over ``items`` on the worker threads, results in the order of ``items``.

        Only the stacked chain runs on workers (the ``vmap`` path goes through
        ``functional_call``, which swaps the parameters of the one shared module in place),
        and only for work of at least :data:`_POOL_MIN_ITEMS` per worker: a few chunks or
        batches ran faster on the calling thread with torch's own threads (a smoke-size
        experiment of 10 UEs trained in 0.44 s there against 0.85 s on two workers).
        """
        pool = self._pool
        if pool is None or self._stacked is None or len(items) < _POOL_MIN_ITEMS * self._workers:
            return [fn(i) for i in items]
        return list(pool.map(fn, items))

    def close(self) -> None:
        """Stop the worker threads (the trainer still works, on the calling thread)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    # -- parameters ---------------------------------------------------------------------------
    def _unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``[..., P]`` -> parameter dict with leading dims ``...``."""
        lead = flat.shape[:-1]
        parts = torch.split(flat, self._sizes, dim=-1)
        return {
            n: t.reshape(*lead, *s)
            for n, t, s in zip(self._names, parts, self._shapes, strict=True)
        }

    def _shared(
        self, flat: torch.Tensor, *, requires_grad: bool = False
    ) -> dict[str, torch.Tensor]:
        """The global model's parameters for a plain (not per-client) pass, convolution
        kernels in channels-last order: with channels-last inputs (:func:`_cl`) the MNIST CNN
        ran 2-4x faster here than in the default order."""
        out = {}
        for n, t in self._unflatten(flat).items():
            if t.ndim == 4:  # empty(): a 1-channel kernel is laid out channels-last too
                t = torch.empty(t.shape, memory_format=torch.channels_last).copy_(t)
            else:
                t = t.clone()
            out[n] = t.requires_grad_(requires_grad)
        return out

    def _plain(
        self, params: dict[str, torch.Tensor], x: torch.Tensor, *, train: bool
    ) -> torch.Tensor:
        """``[B, K]`` outputs of the one shared model on ``x`` (the stacked chain with one
        copy where the model is a chain: its pooling comes before the ReLU)."""
        if self._stacked is not None:
            one = {n: p[None] for n, p in params.items()}
            return self._stacked.forward(one, x[None], train=train)[0]
        was = self.model.training
        self.model.train(train)
        try:
            return functional_call(self.model, params, (_cl(x),))
        finally:
            self.model.train(was)

    def _flatten(self, params: dict[str, torch.Tensor], lead: int) -> torch.Tensor:
        return torch.cat([params[n].reshape(lead, -1) for n in self._names], dim=1)

    def _make_grad(self) -> Callable[..., dict[str, torch.Tensor]]:
        model = self.model

        def loss(
            params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, m: torch.Tensor
        ) -> torch.Tensor:
            logits = functional_call(model, params, (x,))
            ce = functional.cross_entropy(logits, y, reduction="none")
            return (ce * m).sum() / m.sum().clamp(min=1.0)

        return vmap(grad(loss), randomness=self._randomness)

    # -- scoring ------------------------------------------------------------------------------
    def losses(
        self,
        global_flat: npt.NDArray[np.float32],
        x: torch.Tensor,
        y: torch.Tensor,
        index: npt.NDArray[np.int64] | None = None,
    ) -> torch.Tensor:
        """``[N]`` cross-entropy of the global model on every sample (eval mode, no grad),
        or on ``x[index]`` (gathered batch by batch, never as one copy)."""
        params = self._shared(torch.from_numpy(np.ascontiguousarray(global_flat)))
        n = x.shape[0] if index is None else index.size

        def block(i: int) -> torch.Tensor:
            if index is None:
                xb, yb = x[i : i + _EVAL_BATCH], y[i : i + _EVAL_BATCH]
            else:
                take = torch.from_numpy(index[i : i + _EVAL_BATCH])
                xb, yb = x[take], y[take]
            with torch.no_grad():
                logits = self._plain(params, xb, train=False)
                return functional.cross_entropy(logits, yb, reduction="none")

        parts = self._map(block, range(0, n, _EVAL_BATCH))
        return torch.cat(parts) if parts else torch.empty(0)

    def correct(
        self, global_flat: npt.NDArray[np.float32], x: torch.Tensor, y: torch.Tensor
    ) -> tuple[int, float]:
        """Correct predictions of the global model on ``x``, and its summed cross-entropy."""
        params = self._shared(torch.from_numpy(np.ascontiguousarray(global_flat)))

        def block(i: int) -> tuple[int, float]:
            with torch.no_grad():
                logits = self._plain(params, x[i : i + _EVAL_BATCH], train=False)
                target = y[i : i + _EVAL_BATCH]
                loss = float(functional.cross_entropy(logits, target, reduction="sum"))
                return int((logits.argmax(dim=1) == target).sum()), loss

        parts = self._map(block, range(0, x.shape[0], _EVAL_BATCH))
        return sum(h for h, _ in parts), float(sum(v for _, v in parts))

    # -- training -----------------------------------------------------------------------------
    def train(
        self,
        global_flat: npt.NDArray[np.float32],
        x: torch.Tensor,
        y: torch.Tensor,
        segments: Sequence[npt.NDArray[np.int64]],
        cfg: SGDConfig,
        *,
        scale: npt.NDArray[np.float64] | None = None,
        each: bool = False,
    ) -> tuple[npt.NDArray[np.float64], list[npt.NDArray[np.float32]]]:
        """Train one client per entry of ``segments`` from ``global_flat``.

        Args:
            global_flat: ``[P]`` float32, the global model.
            x: ``[N, C, H, W]`` float32, y: ``[N]`` int64: the samples of all clients.
            segments: per client, the indices into ``x`` of its local data (its order is the
                order its agent holds them in).
            scale: ``[len(segments)]`` weight of each client's update in the returned sum
                (default 1).
            each: also return every client's ``delta`` (float32 ``[P]`` each).

        Returns:
            ``(sum_u scale_u delta_u`` as float64 ``[P]``, the deltas if ``each`` else ``[])``;
            each ``scale_u delta_u`` is rounded to float32 before it is summed, as an agent's
            upload is.
        """
        n_clients = len(segments)
        weights = np.ones(n_clients) if scale is None else np.asarray(scale, dtype=np.float64)
        if weights.shape != (n_clients,):
            raise ValueError(f"`scale` must be [{n_clients}], got {weights.shape}")
        total = np.zeros(self.dim, dtype=np.float64)
        deltas: list[npt.NDArray[np.float32]] = []
        w0 = torch.from_numpy(np.ascontiguousarray(global_flat, dtype=np.float32))
        sizes = np.array([len(s) for s in segments], dtype=np.int64)
        one_step = (sizes <= cfg.batch_size) & (cfg.epochs == 1) & (not each)
        if one_step.any():
            pick = np.flatnonzero(one_step)
            total += self._one_step_sum(w0, x, y, [segments[i] for i in pick], weights[pick], cfg)
        rest = np.flatnonzero(~one_step)
        perms = _permutations([int(sizes[i]) for i in rest], cfg)

        def chunk(lo: int) -> tuple[npt.NDArray[np.float64], list[npt.NDArray[np.float32]]]:
            part = rest[lo : lo + self.chunk]
            delta = self._train_chunk(w0, x, y, [segments[i] for i in part], perms, cfg)
            scaled = delta * torch.from_numpy(weights[part].astype(np.float32))[:, None]
            mine = [d.numpy().copy() for d in delta] if each else []
            return scaled.double().sum(dim=0).numpy(), mine

        for part_sum, part_deltas in self._map(chunk, range(0, rest.size, self.chunk)):
            total += part_sum
            deltas.extend(part_deltas)
        return total, deltas

    def _one_step_sum(
        self,
        w0: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        segments: Sequence[npt.NDArray[np.int64]],
        weights: npt.NDArray[np.float64],
        cfg: SGDConfig,
    ) -> npt.NDArray[np.float64]:
        """``sum_u q_u delta_u`` of clients that take exactly one SGD step, in closed form.

        A client whose whole local data is one mini-batch of one epoch steps once from the
        global model: ``delta_u = -lr (grad L_u(w) + wd w)`` (momentum's first step is the
        gradient itself, FedProx's term is zero at ``w``). Their weighted sum is therefore
        ``-lr (grad sum_i (q_u(i) / n_u(i)) ce_i(w) + wd w sum_u q_u)``: one backward pass of
        the shared global model over all their samples, never one copy of the model each.
        """
        idx = np.concatenate(segments)
        sizes = [len(s) for s in segments]
        per_sample = np.repeat(weights / np.array(sizes), sizes)

        # One set of leaves for every block: autograd.grad on separate graphs that share
        # leaves accumulates nothing into them, so the worker threads do not interfere.
        params = self._shared(w0, requires_grad=True)

        def block(lo: int) -> list[torch.Tensor]:
            take = torch.from_numpy(idx[lo : lo + _EVAL_BATCH])
            q = torch.from_numpy(per_sample[lo : lo + _EVAL_BATCH].astype(np.float32))
            logits = self._plain(params, x[take], train=True)
            loss = (functional.cross_entropy(logits, y[take], reduction="none") * q).sum()
            return list(torch.autograd.grad(loss, list(params.values())))

        acc: list[torch.Tensor] | None = None
        for grads in self._map(block, range(0, idx.size, _EVAL_BATCH)):
            acc = grads if acc is None else [a + g for a, g in zip(acc, grads, strict=True)]
        assert acc is not None  # segments is never empty here
        g_flat = torch.cat([a.reshape(-1) for a in acc]).double()
        if cfg.weight_decay > 0:
            g_flat = g_flat + cfg.weight_decay * float(weights.sum()) * w0.double()
        return (-cfg.lr * g_flat).numpy()

    def _gradients(
        self, flat: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``[C, P]`` each client's gradient of its mean loss over its batch (``mask``)."""
        c = flat.shape[0]
        if self._stacked is None:
            return self._flatten(self._step_grad(self._unflatten(flat), xb, yb, mask), c)
        leaf = flat.detach().requires_grad_(True)
        logits = self._stacked.forward(self._unflatten(leaf), xb)  # [C, b, K]
        ce = functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), yb.reshape(-1), reduction="none"
        ).reshape(yb.shape)
        loss = ((ce * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).sum()
        (g,) = torch.autograd.grad(loss, leaf)
        return g

    def _train_chunk(
        self,
        w0: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        segments: Sequence[npt.NDArray[np.int64]],
        perms: dict[int, list[npt.NDArray[np.int64]]],
        cfg: SGDConfig,
    ) -> torch.Tensor:
        """``[C, P]`` float32 deltas of one chunk of clients."""
        c, b = len(segments), cfg.batch_size
        flat = w0.expand(c, -1).clone()
        buf = torch.zeros_like(flat) if cfg.momentum > 0 else None
        sizes = np.array([len(s) for s in segments])
        steps = int(np.max(-(-sizes // b)))
        for epoch in range(cfg.epochs):
            # [C, steps * b] sample indices into x in each client's epoch order (-1: padding)
            order = np.full((c, steps * b), -1, dtype=np.int64)
            for i, seg in enumerate(segments):
                order[i, : len(seg)] = seg[perms[len(seg)][epoch]]
            for k in range(steps):
                idx = order[:, k * b : (k + 1) * b]
                mask_np = idx >= 0
                active = torch.from_numpy(mask_np.any(axis=1))
                mask = torch.from_numpy(mask_np.astype(np.float32))
                take = torch.from_numpy(np.where(mask_np, idx, 0))
                xb, yb = x[take], y[take]  # [C, b, ...], [C, b]
                g = self._gradients(flat, xb, yb, mask)
                if cfg.fedprox_mu > 0:
                    g = g + cfg.fedprox_mu * (flat - w0)
                if cfg.weight_decay > 0:
                    g = g + cfg.weight_decay * flat
                if bool(active.all()):  # the usual case: no client sits this step out
                    if buf is not None:
                        buf = buf.mul_(cfg.momentum).add_(g)
                        g = buf
                    flat = flat.sub_(g, alpha=cfg.lr)
                    continue
                if buf is not None:
                    new_buf = cfg.momentum * buf + g
                    buf = torch.where(active[:, None], new_buf, buf)
                    g = buf
                flat = torch.where(active[:, None], flat.sub(g, alpha=cfg.lr), flat)
        return flat - w0


def _permutations(sizes: Sequence[int], cfg: SGDConfig) -> dict[int, list[npt.NDArray[np.int64]]]:
    """Per local dataset size, the epochs' sample orders (every agent seeds the same stream)."""
    out: dict[int, list[npt.NDArray[np.int64]]] = {}
    for n in set(sizes):
        rng = np.random.default_rng(cfg.seed)
        out[n] = [rng.permutation(n) for _ in range(cfg.epochs)]
    return out


def _cl(x: torch.Tensor) -> torch.Tensor:
    """A ``[B, C, H, W]`` batch in channels-last order (one channel: as it is)."""
    return x.contiguous(memory_format=torch.channels_last)


def _has_dropout(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Dropout) for m in model.modules())
