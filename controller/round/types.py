"""The typed values the round core's steps take and return (DESIGN section 8).

Every per-user array is ``[U]`` over :attr:`RoundPlan.ue_ids`, in SI units. Numbers are either
modelled (system model, link layer: ``model_`` prefix) or measured (wall clock, an energy meter:
``measured_`` prefix); the two never share a field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from controller.allocation.instance import Allocation, AllocationInstance
from controller.link import LinkOutcome, LinkPlan
from protocol.arrays import NDArrayFloat, NDArrayInt

__all__ = [
    "LINK_STATUS",
    "Carry",
    "ClientReport",
    "LinkRequest",
    "LinkResult",
    "RoundPlan",
    "RoundRecord",
]

#: Link outcome codes of :attr:`LinkResult.status`.
LINK_STATUS = ("arrived", "late", "failed", "outage")
_ARRIVED = 0


@dataclass(frozen=True)
class ClientReport:
    """What one client reported after local training.

    Attributes:
        ue_id: the UE.
        loss: loss of the global model on its local data (FAL's ``L_u``).
        samples: local training samples (one epoch).
        measured_train_s: wall-clock training time, s (measured).
        freq_applied_hz: CPU frequency the board's DVFS actually applied, Hz.
        measured_energy_j: energy of training from the board's meter, J; None without one.
    """

    ue_id: str
    loss: float
    samples: int
    measured_train_s: float
    freq_applied_hz: float
    measured_energy_j: float | None = None


@dataclass(frozen=True)
class RoundPlan:
    """CRA + CSM + link plan of one round, made from the estimated CSI.

    Attributes:
        index: 0-based round number.
        ue_ids: ``[U]`` the selected clients, in topology order.
        instance: the allocation problem (estimated gains ``G^``, boards, update size).
        allocation: ``(P, B, f)`` and the system model's latency and energy (Shannon rate).
        link: MCS, rate and blocks per user (None when the link layer is off).
        anchor_frame: frame of the CSI the plan was made from (-1: no CSI).
        frame_period_s: duration of one radio frame, s (maps modelled time to frames).
        deadline_s: modelled round deadline, s (inf when the link layer is off).
        mcs_index: ``[U]`` the planned MCS index of the table (-1: outage or no link layer).
    """

    index: int
    ue_ids: tuple[str, ...]
    instance: AllocationInstance
    allocation: Allocation
    link: LinkPlan | None
    anchor_frame: int
    frame_period_s: float
    deadline_s: float
    mcs_index: NDArrayInt

    def to_record(self) -> dict[str, Any]:
        """JSON form stored with the round (per-user lists keyed by field, and scalars)."""
        out: dict[str, Any] = {"ue_ids": list(self.ue_ids), **self.allocation.to_dict()}
        out["gain"] = self.instance.gain.tolist()
        out["deadline_s"] = _finite_or_none(self.deadline_s)
        out["anchor_frame"] = self.anchor_frame
        if self.link is not None:
            out["mcs_index"] = self.mcs_index.tolist()
            out["planned_sinr_db"] = _finite_list(self.link.planned_sinr_db)
            out["rate_bps"] = self.link.rate_bps.tolist()
        return out


@dataclass(frozen=True)
class LinkRequest:
    """What the driver asks the air: the true gain of each user at each transmission attempt.

    Attributes:
        model_compute_s: ``[U]`` modelled training time ``c_u D_u / f_applied``, s.
        times_s: ``[U, A]`` modelled start of each attempt after the round's start, s (NaN:
            no such attempt).
        frames: ``[U, A]`` the radio frame of each attempt (``anchor + t / frame period``);
            where ``times_s`` is NaN it holds the anchor frame (a valid frame, ignored).
    """

    model_compute_s: NDArrayFloat
    times_s: NDArrayFloat
    frames: NDArrayInt


@dataclass(frozen=True)
class LinkResult:
    """Which updates the radio carried, and what it cost (all modelled).

    Attributes:
        ue_ids: ``[U]`` the clients that reported (a subset of the plan's, same order).
        status: ``[U]`` index into :data:`LINK_STATUS`.
        mcs_index: ``[U]`` MCS index of the table (-1: outage or link layer off).
        model_arrival_s: ``[U]`` modelled arrival ``t_u``, s (inf: not arrived).
        model_latency_s: ``[U]`` modelled latency each user cost the round, s (the deadline
            for a lost update).
        model_energy_j: ``[U]`` ``P_u airtime_u + kappa_u c_u D_u f_u^2``, J (applied ``f``).
        retries: ``[U]`` HARQ retransmissions.
        outcome: the link layer's full outcome (None when it is off).
        planned_sinr_db: ``[U]`` the SINR the plan expected, dB (NaN: no link layer).
        airtime_s: ``[U]`` uplink airtime each update used, retries included, s (link layer
            off: the system model's upload time); None where not modelled.
        comm_energy_j: ``[U]`` uplink transmit energy ``P_u airtime_u``, J; None likewise.
    """

    ue_ids: tuple[str, ...]
    status: NDArrayInt
    mcs_index: NDArrayInt
    model_arrival_s: NDArrayFloat
    model_latency_s: NDArrayFloat
    model_energy_j: NDArrayFloat
    retries: NDArrayInt
    outcome: LinkOutcome | None
    planned_sinr_db: NDArrayFloat
    airtime_s: NDArrayFloat | None = None
    comm_energy_j: NDArrayFloat | None = None

    @property
    def arrived(self) -> list[str]:
        """The clients whose updates arrived, in plan order."""
        return [u for u, s in zip(self.ue_ids, self.status, strict=True) if s == _ARRIVED]

    @property
    def dropped(self) -> list[str]:
        """The clients whose updates the radio lost (late, failed, outage)."""
        return [u for u, s in zip(self.ue_ids, self.status, strict=True) if s != _ARRIVED]

    def to_record(self) -> dict[str, Any]:
        """JSON form stored with the round."""
        out: dict[str, Any] = {
            "ue_ids": list(self.ue_ids),
            "status": [LINK_STATUS[int(s)] for s in self.status],
            "mcs_index": self.mcs_index.tolist(),
            "model_arrival_s": _finite_list(self.model_arrival_s),
            "model_latency_s": self.model_latency_s.tolist(),
            "model_energy_j": self.model_energy_j.tolist(),
            "retries": self.retries.tolist(),
        }
        if self.airtime_s is not None and self.comm_energy_j is not None:
            out["model_airtime_s"] = self.airtime_s.tolist()
            out["model_comm_energy_j"] = self.comm_energy_j.tolist()
        return out


@dataclass(frozen=True)
class RoundRecord:
    """The metrics of one committed round (metrics.csv has one row of these per round).

    Modelled: ``model_latency_s`` (round latency: last arrival, or the deadline when an
    update was late), ``model_energy_j`` (sum over the clients that reported),
    ``model_time_s`` (cumulative modelled experiment time), ``mean_mcs_index``. Measured:
    ``measured_train_s`` (slowest contributor), ``measured_energy_j`` (sum of the meters'
    readings; None where no reporting board has a meter). ``reward`` is the power policy's
    ``R_t``; ``updated`` says whether the global model changed.
    """

    index: int
    accuracy: float | None
    loss: float | None
    fairness_var: float | None
    model_latency_s: float
    model_energy_j: float
    model_time_s: float
    measured_train_s: float
    measured_energy_j: float | None
    link_dropouts: int
    crash_dropouts: int
    mean_mcs_index: float | None
    reward: float
    updated: bool


@dataclass
class Carry:
    """What a driver takes from the last committed round into the next.

    Attributes:
        model_time_s: modelled experiment time so far, s.
        accuracy, loss, fairness_var: the last metrics (a round without an update keeps them).
        history: each UE's last link outcome (rows of ``link_features``), the power policy's
            state.
    """

    model_time_s: float = 0.0
    accuracy: float | None = None
    loss: float | None = None
    fairness_var: float | None = None
    history: dict[str, NDArrayFloat] = field(default_factory=dict)


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _finite_list(a: NDArrayFloat) -> list[float | None]:
    return [_finite_or_none(float(x)) for x in a]
