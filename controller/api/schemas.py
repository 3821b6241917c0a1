"""Public shapes of the REST resources."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

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


class RoundPublic(BaseModel):
    index: int
    accuracy: float | None
    loss: float | None
    latency_s: float
    energy_j: float
    fairness_var: float | None
    dropouts: int
    overhead_s: float
    wall_s: float
    reward: float | None
    allocation: dict[str, Any] | None = None
    details: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: RoundRow, full: bool = True) -> RoundPublic:
        return cls(
            index=row.index,
            accuracy=row.accuracy,
            loss=row.loss,
            latency_s=row.latency_s,
            energy_j=row.energy_j,
            fairness_var=row.fairness_var,
            dropouts=row.dropouts,
            overhead_s=row.overhead_s,
            wall_s=row.wall_s,
            reward=row.reward,
            allocation=row.allocation if full else None,
            details=row.details if full else None,
        )


class AgentPublic(BaseModel):
    id: str
    profile: str
    alive: bool
    last_seen_s_ago: float
    status: dict[str, Any]
