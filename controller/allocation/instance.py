"""One per-round allocation problem (the instance) and its solution (the allocation).

:class:`AllocationInstance` holds the per-user arrays of DESIGN section 5 in SI units; it is what
every solver takes. :class:`InstanceModel` is the JSON schema of ``testbed alloc solve``: it
validates a document with errors that name the field (``users.2.f_levels_hz: ...``) and converts
to an instance. :class:`Allocation` is what every solver returns.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from controller.allocation._types import NDArrayBool, NDArrayFloat
from protocol.profiles import DeviceProfile
from protocol.spec import WeightsSpec, format_validation_errors

__all__ = [
    "Allocation",
    "AllocationInstance",
    "InstanceError",
    "InstanceModel",
    "ObjectiveWeights",
    "UserModel",
    "WeightsModel",
    "load_instance",
    "parse_instance",
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


# -- JSON schema of `testbed alloc solve` -----------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class UserModel(_Strict):
    """One user: its channel gain and board; DVFS levels or a continuous frequency range."""

    gain: float = Field(gt=0, allow_inf_nan=False, description="Combined gain G_u, >0.")
    cycles_per_sample: float = Field(gt=0, allow_inf_nan=False, description="c_u, cycles.")
    samples: float = Field(gt=0, allow_inf_nan=False, description="D_u, samples per round.")
    kappa: float = Field(ge=0, allow_inf_nan=False, description="J/(cycle Hz^2).")
    f_levels_hz: list[float] | None = Field(
        default=None, min_length=1, description="DVFS levels, Hz, strictly ascending."
    )
    f_min_hz: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    f_max_hz: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("f_levels_hz")
    @classmethod
    def _ascending(cls, lv: list[float] | None) -> list[float] | None:
        if lv is None:
            return None
        if any(not (math.isfinite(f) and f > 0) for f in lv):
            raise ValueError("levels must be finite and > 0 (Hz)")
        if any(b <= a for a, b in itertools.pairwise(lv)):
            raise ValueError("levels must be strictly ascending (Hz)")
        return lv

    @model_validator(mode="after")
    def _levels_or_range(self) -> UserModel:
        if self.f_levels_hz is not None:
            if self.f_min_hz is not None or self.f_max_hz is not None:
                raise ValueError("give either f_levels_hz or f_min_hz/f_max_hz, not both")
        elif self.f_min_hz is None or self.f_max_hz is None:
            missing = "f_min_hz" if self.f_min_hz is None else "f_max_hz"
            raise ValueError(f"{missing}: missing (give f_levels_hz or both f_min_hz and f_max_hz)")
        elif self.f_min_hz > self.f_max_hz:
            raise ValueError(f"f_min_hz ({self.f_min_hz:g}) exceeds f_max_hz ({self.f_max_hz:g})")
        return self


class WeightsModel(_Strict):
    alpha: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    beta: float = Field(default=0.1, ge=0, allow_inf_nan=False, description="1/J.")
    gamma: float = Field(default=1.0, ge=0, allow_inf_nan=False, description="1/s.")
    lambda_: float = Field(default=0.1, ge=0, alias="lambda", description="FAL weight (unused).")


class InstanceModel(_Strict):
    """The JSON instance of ``testbed alloc solve``; SI units throughout."""

    bandwidth_hz: float = Field(gt=0, allow_inf_nan=False, description="Total bandwidth B, Hz.")
    noise_psd_w_per_hz: float = Field(gt=0, allow_inf_nan=False, description="N0, W/Hz.")
    update_bits: float = Field(gt=0, allow_inf_nan=False, description="S, bits per update.")
    p_max_w: float = Field(gt=0, allow_inf_nan=False, description="Largest power, W.")
    users: list[UserModel] = Field(min_length=1)
    weights: WeightsModel = Field(default_factory=WeightsModel)

    def to_instance(self) -> AllocationInstance:
        """The solver-ready arrays of this document."""
        users = self.users
        levels = [u.f_levels_hz for u in users]
        f_min = [u.f_levels_hz[0] if u.f_levels_hz else u.f_min_hz for u in users]
        f_max = [u.f_levels_hz[-1] if u.f_levels_hz else u.f_max_hz for u in users]
        w = self.weights
        return AllocationInstance(
            gain=np.array([u.gain for u in users]),
            cycles_per_sample=np.array([u.cycles_per_sample for u in users]),
            samples=np.array([u.samples for u in users]),
            kappa=np.array([u.kappa for u in users]),
            f_min_hz=np.array(f_min, dtype=np.float64),
            f_max_hz=np.array(f_max, dtype=np.float64),
            p_max_w=np.full(len(users), self.p_max_w),
            bandwidth_hz=self.bandwidth_hz,
            noise_psd_w_per_hz=self.noise_psd_w_per_hz,
            update_bits=self.update_bits,
            weights=ObjectiveWeights(alpha=w.alpha, beta=w.beta, gamma=w.gamma),
            f_levels_hz=pad_levels(levels),
        )

    @classmethod
    def from_instance(cls, inst: AllocationInstance) -> InstanceModel:
        """The JSON document of ``inst`` (uses the first user's ``p_max_w``)."""
        assert inst.f_levels_hz is not None
        users = []
        for i in range(inst.n_users):
            row = inst.f_levels_hz[i]
            base: dict[str, Any] = {
                "gain": float(inst.gain[i]),
                "cycles_per_sample": float(inst.cycles_per_sample[i]),
                "samples": float(inst.samples[i]),
                "kappa": float(inst.kappa[i]),
            }
            if np.isnan(row[0]):
                base |= {"f_min_hz": float(inst.f_min_hz[i]), "f_max_hz": float(inst.f_max_hz[i])}
            else:
                base["f_levels_hz"] = row[~np.isnan(row)].tolist()
            users.append(UserModel(**base))
        w = inst.weights
        return cls(
            bandwidth_hz=inst.bandwidth_hz,
            noise_psd_w_per_hz=inst.noise_psd_w_per_hz,
            update_bits=inst.update_bits,
            p_max_w=float(inst.p_max_w[0]),
            users=users,
            weights=WeightsModel(alpha=w.alpha, beta=w.beta, gamma=w.gamma),
        )


class InstanceError(ValueError):
    """An instance document that cannot be solved; ``problems`` holds one line per error."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))


def parse_instance(data: object, source: str = "<instance>") -> InstanceModel:
    """Validate a parsed JSON document; raise :class:`InstanceError` naming every bad field."""
    if not isinstance(data, dict):
        raise InstanceError(source, [f"top level: expected an object, got {type(data).__name__}"])
    try:
        return InstanceModel.model_validate(data)
    except ValidationError as err:
        raise InstanceError(source, format_validation_errors(err)) from None


def load_instance(path: str | Path) -> InstanceModel:
    """Read and validate the JSON instance file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise InstanceError(str(p), [f"cannot read file: {err.strerror}"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InstanceError(str(p), [f"not valid JSON: {err}"]) from None
    return parse_instance(data, source=str(p))
