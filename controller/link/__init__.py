"""Link layer of DESIGN section 12: which updates the radio delivers, when, at what energy.

Pure NumPy, vectorised over users, no I/O and no clocks; every time is modelled.

- ``mcs``: the 3GPP TS 38.214 MCS tables (:data:`TABLES`, :func:`get_table`) with the 10%-BLER
  SINR of each entry, and :func:`choose_mcs`.
- ``bler``: the logistic BLER curve of each MCS (:func:`bler`).
- ``harq``: :func:`plan_links` (MCS and rates from estimated CSI), :func:`attempt_times` (when
  the caller must ask the air for the true gain), :func:`transmit` (HARQ over the true channel,
  given seeded uniforms), :func:`transmit_bytes` (the same HARQ with the bytes through a PHY,
  ``link.mode: iq``) and :func:`deadline_from_plan`.
- ``measured``: :func:`measured_table`, the PHY's measured BLER (``testbed bench phy``) as an
  MCS table (``link.bler: measured``).
"""

from controller.link.bler import bler, bler_midpoint_db
from controller.link.harq import (
    ARRIVED,
    FAILED,
    LATE,
    OUTAGE,
    LinkConfig,
    LinkOutcome,
    LinkPlan,
    PhyCarrier,
    attempt_times,
    deadline_from_plan,
    plan_links,
    transmit,
    transmit_bytes,
)
from controller.link.mcs import TABLES, McsTable, choose_mcs, get_table
from controller.link.measured import DEFAULT_TABLE, measured_table

__all__ = [
    "ARRIVED",
    "DEFAULT_TABLE",
    "FAILED",
    "LATE",
    "OUTAGE",
    "TABLES",
    "LinkConfig",
    "LinkOutcome",
    "LinkPlan",
    "McsTable",
    "PhyCarrier",
    "attempt_times",
    "bler",
    "bler_midpoint_db",
    "choose_mcs",
    "deadline_from_plan",
    "get_table",
    "measured_table",
    "plan_links",
    "transmit",
    "transmit_bytes",
]
