"""Where the virtual clients run: this process (``local``) or shard actors on Ray (``ray``).

Both hold the UEs in :class:`~simulator.clients.ClientShard` s and answer the same three calls
per round; the driver never sees which one it has. With Ray, the UEs are split into contiguous
blocks of topology order, one block per actor (one actor per CPU by default, each with one
torch thread); the round's global model goes into the object store once (:meth:`publish`) and
every actor reads it from there; each actor returns one partial sum of the weighted updates of
its own clients, never one object per client.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from protocol.spec import ExperimentSpec
from simulator.clients import ClientShard
from simulator.training import SGDConfig

__all__ = ["Backend", "LocalBackend", "RayBackend", "make_backend"]


class Backend(Protocol):
    """The virtual clients, by topology index."""

    name: str
    workers: int

    def samples(self) -> dict[int, int]:
        """Local training samples of every UE."""
        ...

    def publish(self, global_flat: npt.NDArray[np.float32]) -> Any:
        """A handle of the round's global model for the calls below (sent once)."""
        ...

    def score(self, model: Any, members: Sequence[int]) -> dict[int, float]:
        """Mean loss of the model on each member's local data."""
        ...

    def train_sum(
        self, model: Any, members: Sequence[int], weights: Sequence[float], cfg: SGDConfig
    ) -> npt.NDArray[np.float64]:
        """``sum_u q_u delta_u`` (float64 ``[P]``) over ``members`` trained from the model."""
        ...

    def train_each(
        self, model: Any, members: Sequence[int], cfg: SGDConfig
    ) -> dict[int, npt.NDArray[np.float32]]:
        """Every member's own ``delta`` (float32 ``[P]``)."""
        ...

    def close(self) -> None: ...


class LocalBackend:
    """One shard in this process on ``threads`` CPU threads (default: every CPU): that many
    trainer threads side by side, each with one torch thread."""

    name = "local"

    def __init__(
        self,
        spec: ExperimentSpec,
        indices: Sequence[npt.NDArray[np.int64]],
        *,
        threads: int | None = None,
        data_dir: str | None = None,
    ) -> None:
        self.workers = 1
        threads = threads or len(os.sched_getaffinity(0))
        self._shard = ClientShard(
            spec.model_dump_json(), list(range(spec.n_ues)), indices, threads, data_dir
        )

    def samples(self) -> dict[int, int]:
        return self._shard.samples()

    def publish(self, global_flat: npt.NDArray[np.float32]) -> Any:
        return global_flat

    def score(self, model: Any, members: Sequence[int]) -> dict[int, float]:
        return dict(zip(members, self._shard.score(model, members), strict=True))

    def train_sum(
        self, model: Any, members: Sequence[int], weights: Sequence[float], cfg: SGDConfig
    ) -> npt.NDArray[np.float64]:
        return self._shard.train_sum(model, members, weights, cfg)[0]

    def train_each(
        self, model: Any, members: Sequence[int], cfg: SGDConfig
    ) -> dict[int, npt.NDArray[np.float32]]:
        deltas, _ = self._shard.train_each(model, members, cfg)
        return dict(zip(members, deltas, strict=True))

    def close(self) -> None:
        """Stop the shard's trainer threads."""
        self._shard.trainer.close()


class RayBackend:
    """Shard actors on Ray: a local cluster of ``workers`` CPUs, or the one at ``address``.

    Args:
        spec: the experiment.
        indices: every UE's training-sample indices (topology order).
        workers: shard actors (default: the cluster's CPUs).
        address: an existing cluster (``auto``, ``ray://host:10001``); None starts one here.
        data_dir: the datasets' folder on every node.
    """

    name = "ray"

    def __init__(
        self,
        spec: ExperimentSpec,
        indices: Sequence[npt.NDArray[np.int64]],
        *,
        workers: int | None = None,
        address: str | None = None,
        data_dir: str | None = None,
    ) -> None:
        import ray

        self._ray = ray
        if not ray.is_initialized():
            if address is None:
                ray.init(
                    num_cpus=workers or len(os.sched_getaffinity(0)),
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        self._owns = address is None
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = min(n, spec.n_ues)
        self.workers = n
        blocks = np.array_split(np.arange(spec.n_ues), n)
        actor = ray.remote(num_cpus=1)(ClientShard)
        spec_json = spec.model_dump_json()
        self._actors: list[Any] = [
            actor.remote(spec_json, b.tolist(), [indices[i] for i in b], 1, data_dir)
            for b in blocks
        ]
        self._shard_of = np.empty(spec.n_ues, dtype=np.int64)
        for s, b in enumerate(blocks):
            self._shard_of[b] = s
        self._samples: dict[int, int] = {}
        for part in ray.get([a.samples.remote() for a in self._actors]):
            self._samples.update(part)

    def samples(self) -> dict[int, int]:
        return dict(self._samples)

    def publish(self, global_flat: npt.NDArray[np.float32]) -> Any:
        return self._ray.put(global_flat)

    def _split(self, members: Sequence[int]) -> dict[int, list[int]]:
        """Positions in ``members`` per shard, in order."""
        out: dict[int, list[int]] = {}
        for pos, m in enumerate(members):
            out.setdefault(int(self._shard_of[m]), []).append(pos)
        return out

    def score(self, model: Any, members: Sequence[int]) -> dict[int, float]:
        split = self._split(members)
        calls = {
            s: self._actors[s].score.remote(model, [members[p] for p in pos])
            for s, pos in split.items()
        }
        out: dict[int, float] = {}
        for s, losses in zip(calls, self._ray.get(list(calls.values())), strict=True):
            out.update(zip([members[p] for p in split[s]], losses, strict=True))
        return {m: out[m] for m in members}

    def train_sum(
        self, model: Any, members: Sequence[int], weights: Sequence[float], cfg: SGDConfig
    ) -> npt.NDArray[np.float64]:
        split = self._split(members)
        calls = [
            self._actors[s].train_sum.remote(
                model, [members[p] for p in pos], [weights[p] for p in pos], cfg
            )
            for s, pos in sorted(split.items())
        ]
        parts = self._ray.get(calls)
        return np.sum([p[0] for p in parts], axis=0)

    def train_each(
        self, model: Any, members: Sequence[int], cfg: SGDConfig
    ) -> dict[int, npt.NDArray[np.float32]]:
        split = self._split(members)
        calls = {
            s: self._actors[s].train_each.remote(model, [members[p] for p in pos], cfg)
            for s, pos in split.items()
        }
        out: dict[int, npt.NDArray[np.float32]] = {}
        for s, (deltas, _) in zip(calls, self._ray.get(list(calls.values())), strict=True):
            out.update(zip([members[p] for p in split[s]], deltas, strict=True))
        return out

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)
        self._actors = []
        if self._owns:
            self._ray.shutdown()


def make_backend(
    spec: ExperimentSpec,
    indices: Sequence[npt.NDArray[np.int64]],
    *,
    backend: str | None = None,
    address: str | None = None,
    workers: int | None = None,
    data_dir: str | None = None,
) -> Backend:
    """The backend ``backend`` (default ``spec.engine.backend``)."""
    kind = backend or spec.engine.backend
    if kind == "local":
        return LocalBackend(spec, indices, data_dir=data_dir)
    if kind == "ray":
        return RayBackend(
            spec,
            indices,
            workers=workers or spec.engine.workers,
            address=address or spec.engine.ray_address,
            data_dir=data_dir,
        )
    raise ValueError(f"`backend` must be 'local' or 'ray', got {kind!r}.")
