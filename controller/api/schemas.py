"""Public shapes of the REST resources."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, field_validator

from controller.db import RoundRow

__all__ = ["AgentPublic", "ExperimentPublic", "RoundPublic"]


class ExperimentPublic(BaseModel):
    id: str
    name: str
    status: str
    algorithm: str
    rounds_total: int
    rounds_completed: int
    model_version: int
    current_round: int | None = None
    error: str | None = None
    created_at: dt.datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        """UTC with its offset (SQLite hands the stored UTC time back without one)."""
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


class RoundPublic(BaseModel):
    """One committed round. ``model_*``: modelled (system model, link layer); ``measured_*``,
    ``wall_s`` and ``overhead_s``: measured (wall clock, energy meters)."""

    index: int
    accuracy: float | None
    loss: float | None
    fairness_var: float | None
    model_latency_s: float
    model_energy_j: float
    model_time_s: float
    mean_mcs_index: float | None
    measured_train_s: float
    measured_energy_j: float | None
    overhead_s: float
    wall_s: float
    link_dropouts: int
    crash_dropouts: int
    updated: bool
    reward: float | None
    allocation: dict[str, Any] | None = None
    details: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: RoundRow, full: bool = True) -> RoundPublic:
        fields = {k: getattr(row, k) for k in cls.model_fields if k not in _FULL_ONLY}
        if full:
            fields.update(allocation=row.allocation, details=row.details)
        return cls(**fields)


_FULL_ONLY = ("allocation", "details")


class AgentPublic(BaseModel):
    id: str
    profile: str
    alive: bool
    last_seen_s_ago: float
    status: dict[str, Any]
