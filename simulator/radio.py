"""The simulator's radio: the CSI a round plans from, and the channel its updates cross.

The networked controller plans from the AP cluster's CSI, each AP's last
:data:`WINDOW` messages (one every :data:`PUBLISH_INTERVAL_S`, ``controller.csi_source``), and
asks the air server for the true gain at each transport block's frame. The simulator does the
same against the same world, with its own clock: round ``t`` plans at the frame of its modelled
start (``model_time_s`` of the rounds before it, on the publishing grid), so a sweep does not
depend on how fast this machine trains.

- :class:`SimRadio`: CSI-only estimates (``sim_backend.csi_only``: the statistics of the IQ
  flowgraph path, MMSE as the AP flowgraph) and true gains, from the exact world (every frame
  built, bit-identical to the air server's) or the sampled one (``sim_backend.sampled``: only
  the frames a round looks at, for thousands of UEs).
- :class:`ReplayRadio`: the CSI a networked run used (its ``rounds.json``), with the exact
  world's true gains: the same plans as that run, for checking the two drivers against
  each other or for replaying a run through a changed allocator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np

from protocol.arrays import NDArrayFloat, NDArrayInt
from protocol.spec import ExperimentSpec
from sim_backend import CSIOnlySimulator, World, true_gains
from sim_backend.sampled import SampledChannel

__all__ = [
    "EXACT_MAX_UES",
    "PUBLISH_INTERVAL_S",
    "WINDOW",
    "Radio",
    "ReplayRadio",
    "SimRadio",
    "channel_mode",
]

#: CSI messages per AP the planning gain averages (as ``controller.csi_source``).
WINDOW = 20
#: Period of an AP's CSI messages, s (``ap_cluster`` ``publish_interval_s``).
PUBLISH_INTERVAL_S = 0.05
#: ``engine.channel: auto`` builds every frame up to this many UEs.
EXACT_MAX_UES = 256


def channel_mode(spec: ExperimentSpec) -> Literal["exact", "sampled"]:
    """The channel ``spec.engine.channel`` resolves to."""
    mode = spec.engine.channel
    if mode == "auto":
        return "exact" if spec.n_ues <= EXACT_MAX_UES else "sampled"
    return mode


class Radio(Protocol):
    """CSI for the plan, true gains for the link layer."""

    def csi(
        self, index: int, model_time_s: float, ue_ids: Sequence[str]
    ) -> tuple[NDArrayFloat | None, dict[str, Any]]:
        """``[U]`` estimated ``G^_u`` of round ``index`` and facts (``frames``: anchor)."""
        ...

    def true_gains(self, ue_ids: Sequence[str], frames: NDArrayInt) -> NDArrayFloat:
        """``[U, K]`` true ``G_u`` at ``frames`` (``controller.air.AirChannel``)."""
        ...


class SimRadio:
    """The sim world's CSI and channel on the modelled clock.

    Args:
        spec: the experiment (its world: topology, radio, seed).
        mode: ``exact`` or ``sampled`` (default: :func:`channel_mode`).
    """

    def __init__(self, spec: ExperimentSpec, mode: Literal["exact", "sampled"] | None = None):
        self.mode = mode or channel_mode(spec)
        self.world = World(spec)
        cfg = self.world.cfg
        self._index = {u: i for i, u in enumerate(cfg.ue_ids)}
        self.ap_ids = list(cfg.ap_ids)
        self.every = max(1, round(PUBLISH_INTERVAL_S / cfg.frame_period_s))
        self._sampled = SampledChannel(self.world) if self.mode == "sampled" else None
        self._exact = CSIOnlySimulator(self.world) if self.mode == "exact" else None

    def anchor(self, model_time_s: float) -> int:
        """The frame of the last CSI message at modelled time ``model_time_s`` (s)."""
        frame = (WINDOW - 1) * self.every + math.floor(model_time_s / self.world.cfg.frame_period_s)
        return frame - frame % self.every

    def _estimates(self, frames: Sequence[int]) -> NDArrayFloat:
        """``[F, U_all]`` ``sum_l ||h^_{u,l}||^2`` of the CSI messages at ``frames``."""
        if self._sampled is not None:
            return self._sampled.estimated_gains(frames)
        assert self._exact is not None
        out = []
        for f in frames:
            est = self._exact.frames(int(f), 1).mmse[0]  # [L, U, N]
            out.append(np.sum(est.real**2 + est.imag**2, axis=(0, 2)))
        return np.stack(out)

    def csi(
        self, index: int, model_time_s: float, ue_ids: Sequence[str]
    ) -> tuple[NDArrayFloat | None, dict[str, Any]]:
        anchor = self.anchor(model_time_s)
        frames = [anchor - k * self.every for k in range(WINDOW - 1, -1, -1)]
        # In the simulator the message noise variance is the thermal noise power, so
        # noise_power * ||h^||^2 / noise_var (controller.csi.gain) is ||h^||^2.
        mean = self._estimates(frames).mean(axis=0)
        g = mean[[self._index[u] for u in ue_ids]]
        info = {
            "source": f"sim-csi-only ({self.mode})",
            "all_stale": False,
            "frames": dict.fromkeys(self.ap_ids, anchor),
        }
        return g, info

    def true_gains(self, ue_ids: Sequence[str], frames: NDArrayInt) -> NDArrayFloat:
        idx = np.array([self._index[u] for u in ue_ids], dtype=np.int64)
        if self._sampled is not None:
            return self._sampled.true_gains(idx, frames)
        return true_gains(self.world, idx, np.asarray(frames, dtype=np.int64))


class ReplayRadio:
    """A networked run's CSI (its rounds' ``allocation.gain`` and ``anchor_frame``), with the
    exact world as the air: what that run's air server answered.

    Args:
        spec: the experiment the rounds came from.
        rounds: the run's ``rounds.json`` (one record per round, ``index`` and ``allocation``).
    """

    def __init__(self, spec: ExperimentSpec, rounds: Sequence[dict[str, Any]]) -> None:
        self._exact = SimRadio(spec, "exact")
        self._rounds = {int(r["index"]): r["allocation"] for r in rounds}

    def csi(
        self, index: int, model_time_s: float, ue_ids: Sequence[str]
    ) -> tuple[NDArrayFloat | None, dict[str, Any]]:
        alloc = self._rounds.get(index)
        if alloc is None:
            raise KeyError(f"the replayed run has no round {index}")
        by_ue = dict(zip(alloc["ue_ids"], alloc["gain"], strict=True))
        missing = [u for u in ue_ids if u not in by_ue]
        if missing:
            raise KeyError(f"round {index} of the replayed run planned no CSI for {missing}")
        anchor = int(alloc.get("anchor_frame", -1))
        frames = dict.fromkeys(self._exact.ap_ids, anchor) if anchor >= 0 else {}
        info = {"source": "replay", "all_stale": False, "frames": frames}
        return np.array([by_ue[u] for u in ue_ids], dtype=np.float64), info

    def true_gains(self, ue_ids: Sequence[str], frames: NDArrayInt) -> NDArrayFloat:
        return self._exact.true_gains(ue_ids, frames)
