"""Virtual clients: each UE's local data as its agent would hold it, trained in batches.

A :class:`ClientShard` plays a set of UEs (by topology index): it holds their training samples,
partitioned exactly as the agents partition them (``edge_agent.data.partition_indices`` with
the spec's partition and seed, so UE ``i`` of the simulator has the samples agent ``i`` would
load), and scores and trains them with one :class:`~simulator.training.BatchedTrainer`. The
local backend runs one shard holding every UE; the Ray backend one shard per actor.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from edge_agent.data import load_dataset, load_raw, partition_indices, resolve_data_dir
from protocol.spec import DatasetSpec, ExperimentSpec
from simulator.training import BatchedTrainer, SGDConfig

__all__ = ["ClientShard", "dataset_dir", "partition"]


def dataset_dir(ds: DatasetSpec, data_dir: str | Path | None = None) -> Path:
    """The folder the agents read ``ds`` from (``dataset.path`` below the data directory)."""
    root = resolve_data_dir(data_dir)
    return root / ds.path if ds.path is not None else root


def partition(
    spec: ExperimentSpec, data_dir: str | Path | None = None
) -> list[npt.NDArray[np.int64]]:
    """Every UE's training-sample indices, in topology order (as each agent computes its own)."""
    ds = spec.dataset
    _, labels = load_raw(ds.name, "train", data_dir=dataset_dir(ds, data_dir))
    return partition_indices(
        labels,
        spec.n_ues,
        ds.partition,
        spec.seed,
        samples_per_client=ds.samples_per_client,
        min_samples=ds.min_samples_per_client,
    )


class ClientShard:
    """The virtual clients of one worker.

    Args:
        spec_json: the experiment spec (JSON: what a Ray actor is built from).
        members: topology indices of the UEs this shard plays.
        indices: per member, its training-sample indices (from :func:`partition`).
        threads: CPU threads of this worker: torch's intra-op threads, and with more than
            one as many trainer threads side by side (``BatchedTrainer``'s ``workers``).
        data_dir: the datasets' folder (default: as the agents, ``$TESTBED_DATA_DIR``).
    """

    def __init__(
        self,
        spec_json: str,
        members: Sequence[int],
        indices: Sequence[npt.NDArray[np.int64]],
        threads: int = 1,
        data_dir: str | None = None,
    ) -> None:
        if len(members) != len(indices):
            raise ValueError(f"`indices` must have one entry per member ({len(members)}).")
        torch.set_num_threads(threads)
        spec = ExperimentSpec.model_validate_json(spec_json)
        ds = spec.dataset
        self.members = list(members)
        sizes = np.array([len(i) for i in indices], dtype=np.int64)
        flat = np.concatenate(list(indices)) if indices else np.zeros(0, dtype=np.int64)
        data = load_dataset(ds.name, "train", data_dir=dataset_dir(ds, data_dir), indices=flat)
        self._x = torch.from_numpy(data.x)
        self._y = torch.from_numpy(data.y.astype(np.int64))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._segment = {
            m: np.arange(s, s + n, dtype=np.int64)
            for m, s, n in zip(self.members, starts, sizes, strict=True)
        }
        self.trainer = BatchedTrainer(spec.model.name, chunk=spec.engine.chunk, workers=threads)

    def samples(self) -> dict[int, int]:
        """Local training samples per member."""
        return {m: int(s.size) for m, s in self._segment.items()}

    def score(self, global_flat: npt.NDArray[np.float32], members: Sequence[int]) -> list[float]:
        """Mean cross-entropy of the global model on each member's local data (FAL's ``L_u``)."""
        if not members:
            return []
        segs = [self._segment[m] for m in members]
        idx = np.concatenate(segs)
        per_sample = self.trainer.losses(global_flat, self._x, self._y, idx).double().numpy()
        starts = np.concatenate([[0], np.cumsum([s.size for s in segs])[:-1]])
        sums = np.add.reduceat(per_sample, starts)
        return (sums / np.array([s.size for s in segs])).tolist()

    def train_sum(
        self,
        global_flat: npt.NDArray[np.float32],
        members: Sequence[int],
        weights: Sequence[float],
        cfg: SGDConfig,
    ) -> tuple[npt.NDArray[np.float64], float]:
        """``sum_u q_u delta_u`` over ``members`` (float64 ``[P]``) and its wall time, s."""
        start = time.perf_counter()
        total, _ = self.trainer.train(
            global_flat,
            self._x,
            self._y,
            [self._segment[m] for m in members],
            cfg,
            scale=np.asarray(weights, dtype=np.float64),
        )
        return total, time.perf_counter() - start

    def train_each(
        self, global_flat: npt.NDArray[np.float32], members: Sequence[int], cfg: SGDConfig
    ) -> tuple[list[npt.NDArray[np.float32]], float]:
        """Each member's own ``delta`` (float32 ``[P]``; for secure aggregation) and the time."""
        start = time.perf_counter()
        _, deltas = self.trainer.train(
            global_flat, self._x, self._y, [self._segment[m] for m in members], cfg, each=True
        )
        return deltas, time.perf_counter() - start
