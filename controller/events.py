"""The experiments' event stream: one database row per fact, served as server-sent events.

A round engine (and the service, for status changes) publishes what happens as it happens:

- ``experiment_status``: ``status``, ``error``;
- ``round_opened``: ``round``, ``attempt``, the ``selected`` UEs;
- ``stage_opened`` and ``stage_closed``: ``round``, ``attempt``, ``stage``, ``tasks`` sent and,
  on closing, ``received`` and ``duration_s`` (measured); secure-aggregation stages also carry
  the protocol's ``threshold``;
- ``plan``: the round's allocation (``ue_ids`` and per-UE ``bandwidth_hz``, ``power_w``,
  ``freq_hz``, ``mcs_index``, ...: :meth:`controller.round.RoundPlan.to_record`);
- ``link``: the link layer's outcome per UE (:meth:`controller.round.LinkResult.to_record`);
- ``round_committed``: the committed round's metrics row (written in the round's own
  transaction: a committed round always has its event);
- ``agent_up`` and ``agent_down``: ``agent``, ``ue``, as the engine sees liveness change;
- ``csi``: per AP its last ``frame``, ``age_s``, ``stale``, the estimated ``gain_db`` per UE
  from its last frames, and the ingest counters (``rejected`` messages by reason).

Rows carry increasing ids across experiments; a client that reconnects with ``Last-Event-ID``
gets every event after it from the database, so nothing is missed across a dropped connection
or a controller restart. Listeners (:meth:`EventLog.listen`) see every event as it is
published, in the publishing thread (the Prometheus metrics are one).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from controller.db import Database, EventRow

__all__ = ["EVENT_KINDS", "READ_LIMIT", "EventLog", "Listener", "format_sse"]

log = logging.getLogger(__name__)

EVENT_KINDS = (
    "experiment_status",
    "round_opened",
    "stage_opened",
    "stage_closed",
    "plan",
    "link",
    "round_committed",
    "agent_up",
    "agent_down",
    "csi",
)
#: (experiment id, kind, data) of each event, as it is published.
Listener = Callable[[str, str, dict[str, Any]], None]
#: Events one read returns at most (a client far behind catches up over several reads).
READ_LIMIT = 500


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class EventLog:
    """Publishes events to the database and to the listeners; reads them back in order."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._listeners: list[Listener] = []
        self._published = 0
        self._lock = threading.Lock()

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def published(self) -> int:
        """Events published by this process (a cheap "anything new?" for the streams)."""
        return self._published

    def publish(
        self,
        experiment_id: str,
        kind: str,
        data: dict[str, Any],
        session: Session | None = None,
    ) -> None:
        """Record one event (in ``session``'s transaction when given, else in its own).

        Raises:
            ValueError: an unknown ``kind``.
        """
        if kind not in EVENT_KINDS:
            raise ValueError(f"`kind` must be one of {EVENT_KINDS}, got {kind!r}")
        clean = _finite(data)
        row = EventRow(experiment_id=experiment_id, kind=kind, data=clean)
        if session is not None:  # counted once the transaction commits: streams look then
            session.add(row)
            event.listen(session, "after_commit", self._count, once=True)
        else:
            with self._db.session() as s:
                s.add(row)
            self._count()
        for listener in self._listeners:
            try:
                listener(experiment_id, kind, clean)
            except Exception:  # a listener's failure never stops a round
                log.exception("event listener failed on %s", kind)

    def _count(self, *_: Any) -> None:
        with self._lock:
            self._published += 1

    def after(
        self, experiment_id: str, last_id: int, limit: int = READ_LIMIT
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """``(id, kind, data)`` of the experiment's events after ``last_id``, oldest first."""
        stmt = (
            select(EventRow.id, EventRow.kind, EventRow.data)
            .where(EventRow.experiment_id == experiment_id, EventRow.id > last_id)
            .order_by(EventRow.id)
            .limit(limit)
        )
        with self._db.session() as s:
            return [(int(i), str(k), dict(d)) for i, k, d in s.execute(stmt)]

    def delete(self, experiment_id: str) -> None:
        """Forget an experiment's events (it was deleted)."""
        with self._db.session() as s:
            for row in s.scalars(select(EventRow).where(EventRow.experiment_id == experiment_id)):
                s.delete(row)


def format_sse(event_id: int, kind: str, data: dict[str, Any]) -> str:
    """One event in the ``text/event-stream`` format."""
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
