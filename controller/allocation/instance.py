"""One per-round allocation problem (the instance) and its solution (the allocation).

:class:`AllocationInstance` holds the per-user arrays of DESIGN section 5 in SI units; it is what
every solver takes. :class:`Allocation` is what every solver returns. (The JSON file of
``testbed alloc solve`` lives with the CLI, in :mod:`testbed.alloc_file`.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protocol.arrays import NDArrayBool, NDArrayFloat
from protocol.profiles import DeviceProfile
from protocol.spec import WeightsSpec

__all__ = [
    "Allocation",
    "AllocationInstance",
    "ObjectiveWeights",
    "pad_levels",
]


@dataclass(frozen=True)
class ObjectiveWeights:
    """Weights of the round objective ``gamma*T + beta*sum E`` and of the reward ``R_t``.

    Attributes:
        alpha: accuracy weight of the reward (dimensionless).
        beta: energy weight, 1/J.
        gamma: latency weight, 1/s.
    """

    alpha: float = 1.0
    beta: float = 0.1
    gamma: float = 1.0

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"`weights.{name}` must be finite and >= 0, got {value!r}.")

    @classmethod
    def from_spec(cls, spec: WeightsSpec) -> ObjectiveWeights:
        """The weights of an experiment's ``weights:`` section."""
        return cls(alpha=spec.alpha, beta=spec.beta, gamma=spec.gamma)


def _vector(name: str, value: Any, n: int | None, *, positive: bool) -> NDArrayFloat:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 and n is not None:
        arr = np.full(n, float(arr))
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array, got shape {arr.shape}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"`{name}` must have {n} entries (one per user), got {arr.shape[0]}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite.")
    if positive and np.any(arr <= 0):
        raise ValueError(f"`{name}` must be > 0 (entry {int(np.argmax(arr <= 0))}).")
    if not positive and np.any(arr < 0):
        raise ValueError(f"`{name}` must be >= 0 (entry {int(np.argmax(arr < 0))}).")
    return arr


def _scalar(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"`{name}` must be finite and > 0, got {value!r}.")
    return v


@dataclass(frozen=True)
class AllocationInstance:
    """The per-round problem of DESIGN section 5 for ``U`` users.

    Per-user arrays, shape ``[U]``, float64:

    - ``gain``: combined channel gain ``G_u`` (dimensionless), SNR ``P G / (N0 B_u)``;
    - ``cycles_per_sample``: ``c_u``, cycles / sample;
    - ``samples``: ``D_u``, samples processed per round (local epochs x local data);
    - ``kappa``: effective switched capacitance, J / (cycle Hz^2);
    - ``f_min_hz``, ``f_max_hz``: CPU frequency range, Hz;
    - ``p_max_w``: largest transmit power, W.

    ``f_levels_hz``: ``[U, L]`` float64, each row the user's DVFS levels in Hz ascending, padded
    with NaN; a row of NaN means a continuous range ``[f_min_hz, f_max_hz]``. Where a row has
    levels, ``f_min_hz``/``f_max_hz`` are its first and last level.

    Scalars: ``bandwidth_hz`` (B, Hz), ``noise_psd_w_per_hz`` (N0, W/Hz), ``update_bits`` (S, bit).
    """

    gain: NDArrayFloat
    cycles_per_sample: NDArrayFloat
    samples: NDArrayFloat
    kappa: NDArrayFloat
    f_min_hz: NDArrayFloat
    f_max_hz: NDArrayFloat
    p_max_w: NDArrayFloat
    bandwidth_hz: float
    noise_psd_w_per_hz: float
    update_bits: float
    weights: ObjectiveWeights = field(default_factory=ObjectiveWeights)
    f_levels_hz: NDArrayFloat | None = None

    def __post_init__(self) -> None:
        gain = _vector("gain", self.gain, None, positive=True)
        n = gain.shape[0]
        if n == 0:
            raise ValueError("`gain` must hold at least one user.")
        set_ = object.__setattr__
        set_(self, "gain", gain)
        for name in ("cycles_per_sample", "samples", "f_min_hz", "f_max_hz", "p_max_w"):
            set_(self, name, _vector(name, getattr(self, name), n, positive=True))
        set_(self, "kappa", _vector("kappa", self.kappa, n, positive=False))
        for name in ("bandwidth_hz", "noise_psd_w_per_hz", "update_bits"):
            set_(self, name, _scalar(name, getattr(self, name)))
        if np.any(self.f_min_hz > self.f_max_hz):
            i = int(np.argmax(self.f_min_hz > self.f_max_hz))
            raise ValueError(f"`f_min_hz` exceeds `f_max_hz` for user {i}.")
        levels = self.f_levels_hz
        if levels is None:
            levels = np.full((n, 1), np.nan)
        levels = np.asarray(levels, dtype=np.float64)
        if levels.ndim != 2 or levels.shape[0] != n:
            raise ValueError(f"`f_levels_hz` must have shape [{n}, L], got {levels.shape}.")
        has = ~np.isnan(levels[:, 0])
        rows = levels[has]
        valid = ~np.isnan(rows)
        steps = np.diff(np.where(valid, rows, 0.0), axis=1)
        if np.any(rows[valid] <= 0) or np.any((steps <= 0) & valid[:, 1:]):
            raise ValueError("`f_levels_hz` rows must be positive and strictly ascending.")
        last = np.nanmax(np.where(np.isnan(rows), -np.inf, rows), axis=1) if rows.size else rows
        if rows.size and (
            not np.allclose(rows[:, 0], self.f_min_hz[has], rtol=1e-12)
            or not np.allclose(last, self.f_max_hz[has], rtol=1e-12)
        ):
            raise ValueError("`f_min_hz`/`f_max_hz` must equal the first/last of `f_levels_hz`.")
        set_(self, "f_levels_hz", levels)

    @property
    def n_users(self) -> int:
        """Number of users ``U``."""
        return int(self.gain.shape[0])

    @property
    def workload_cycles(self) -> NDArrayFloat:
        """``W_u = c_u D_u``: cycles of one round's local training, ``[U]``."""
        return self.cycles_per_sample * self.samples

    @property
    def levels_hz(self) -> NDArrayFloat:
        """``[U, L]`` DVFS levels, Hz, NaN-padded (``f_levels_hz`` after validation)."""
        assert self.f_levels_hz is not None
        return self.f_levels_hz

    @property
    def has_levels(self) -> NDArrayBool:
        """``[U]`` bool: the user's frequency is one of discrete DVFS levels."""
        assert self.f_levels_hz is not None
        return ~np.isnan(self.f_levels_hz[:, 0])

    def snr_bandwidth_hz(self, power_w: NDArrayFloat) -> NDArrayFloat:
        """``a_u = P_u G_u / N0`` in Hz, so that the SNR on ``B_u`` Hz is ``a_u / B_u``; ``[U]``."""
        return power_w * self.gain / self.noise_psd_w_per_hz

    def subset(self, index: Sequence[int] | NDArrayFloat) -> AllocationInstance:
        """The instance restricted to the users at ``index`` (scheduled clients)."""
        idx = np.asarray(index, dtype=np.int64)
        assert self.f_levels_hz is not None
        return AllocationInstance(
            gain=self.gain[idx],
            cycles_per_sample=self.cycles_per_sample[idx],
            samples=self.samples[idx],
            kappa=self.kappa[idx],
            f_min_hz=self.f_min_hz[idx],
            f_max_hz=self.f_max_hz[idx],
            p_max_w=self.p_max_w[idx],
            bandwidth_hz=self.bandwidth_hz,
            noise_psd_w_per_hz=self.noise_psd_w_per_hz,
            update_bits=self.update_bits,
            weights=self.weights,
            f_levels_hz=self.f_levels_hz[idx],
        )

    @classmethod
    def from_profiles(
        cls,
        *,
        gain: NDArrayFloat,
        profiles: Sequence[DeviceProfile],
        samples: NDArrayFloat,
        bandwidth_hz: float,
        noise_psd_w_per_hz: float,
        update_bits: float,
        weights: ObjectiveWeights,
    ) -> AllocationInstance:
        """Build an instance from the users' device profiles (one per user, ``len == U``).

        Args:
            gain: ``[U]`` combined channel gains ``G_u = sum_l ||h_ul||^2`` (dimensionless).
            profiles: the device profile of each user (DVFS levels, kappa, cycles, P_max).
            samples: ``[U]`` samples each user processes this round.
        """
        levels = [p.f_levels_hz for p in profiles]
        return cls(
            gain=gain,
            cycles_per_sample=np.array([p.cycles_per_sample for p in profiles]),
            samples=samples,
            kappa=np.array([p.kappa for p in profiles]),
            f_min_hz=np.array([p.f_min_hz for p in profiles]),
            f_max_hz=np.array([p.f_max_hz for p in profiles]),
            p_max_w=np.array([p.p_max_w for p in profiles]),
            bandwidth_hz=bandwidth_hz,
            noise_psd_w_per_hz=noise_psd_w_per_hz,
            update_bits=update_bits,
            weights=weights,
            f_levels_hz=pad_levels(levels),
        )


def pad_levels(levels: Sequence[Sequence[float] | None]) -> NDArrayFloat:
    """Stack ragged per-user level lists into ``[U, L]`` padded with NaN (None: continuous)."""
    width = max([len(x) for x in levels if x is not None] or [1])
    out = np.full((len(levels), width), np.nan)
    for i, row in enumerate(levels):
        if row is not None:
            out[i, : len(row)] = row
    return out


@dataclass(frozen=True)
class Allocation:
    """The resources of one round, per user ``[U]`` float64 in SI units.

    Attributes:
        bandwidth_hz: ``B_u``, Hz, ``sum <= B``.
        power_w: ``P_u``, W, in ``[0, P_max]``.
        freq_hz: ``f_u``, Hz, one of the user's levels or inside its range.
        latency_s: ``T_u = T^comm_u + T^comp_u``, s.
        energy_j: ``E_u = P_u T^comm_u + kappa_u c_u D_u f_u^2``, J.
        comm_latency_s: ``T^comm_u = S / r_u``, s.
        round_latency_s: ``T = max_u T_u``, s.
        objective: ``gamma T + beta sum_u E_u`` of this allocation.
    """

    bandwidth_hz: NDArrayFloat
    power_w: NDArrayFloat
    freq_hz: NDArrayFloat
    latency_s: NDArrayFloat
    energy_j: NDArrayFloat
    comm_latency_s: NDArrayFloat
    round_latency_s: float
    objective: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: per-user lists plus ``round_latency_s`` and ``objective``."""
        return {
            "bandwidth_hz": self.bandwidth_hz.tolist(),
            "power_w": self.power_w.tolist(),
            "freq_hz": self.freq_hz.tolist(),
            "latency_s": self.latency_s.tolist(),
            "energy_j": self.energy_j.tolist(),
            "comm_latency_s": self.comm_latency_s.tolist(),
            "round_latency_s": self.round_latency_s,
            "objective": self.objective,
        }
