"""The JSON instance file of ``testbed alloc solve``: schema, validation and conversion.

:class:`InstanceModel` validates a document with errors that name the field
(``users.2.f_levels_hz: ...``) and converts to the solvers'
:class:`~controller.allocation.instance.AllocationInstance`.
"""

from __future__ import annotations

import itertools
import json
import math
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

from controller.allocation.instance import AllocationInstance, ObjectiveWeights, pad_levels
from protocol.spec import format_validation_errors

__all__ = [
    "InstanceError",
    "InstanceModel",
    "UserModel",
    "WeightsModel",
    "load_instance",
    "parse_instance",
]


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
