"""Persistence: experiments, rounds and agents in SQLAlchemy (SQLite with WAL, or PostgreSQL).

A round is written in one transaction together with the experiment's ``next_round`` counter, so a
controller restarted at any point resumes at the first round that was not committed: nothing is
lost and nothing is repeated. Global models are safetensors files beside the database
(:mod:`controller.models_store`); the rows hold their paths.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

__all__ = ["AgentRow", "Base", "Database", "EventRow", "ExperimentRow", "RoundRow"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON}


class ExperimentRow(Base):
    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    spec_json: Mapped[str] = mapped_column(Text)
    #: created | running | stopped | completed | failed
    status: Mapped[str] = mapped_column(String(16), default="created")
    next_round: Mapped[int] = mapped_column(Integer, default=0)
    model_version: Mapped[int] = mapped_column(Integer, default=-1)
    model_path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    #: The power policy as saved with the last committed round (resumed after a restart).
    policy_path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    @property
    def spec(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.spec_json)
        return result


class RoundRow(Base):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("experiment_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    fairness_var: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Modelled (system model and link layer): round latency, energy, cumulative time, MCS.
    model_latency_s: Mapped[float] = mapped_column(Float)
    model_energy_j: Mapped[float] = mapped_column(Float)
    model_time_s: Mapped[float] = mapped_column(Float)
    mean_mcs_index: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Measured: slowest contributor's training, energy meters, the round's wall clock.
    measured_train_s: Mapped[float] = mapped_column(Float)
    measured_energy_j: Mapped[float | None] = mapped_column(Float, nullable=True)
    overhead_s: Mapped[float] = mapped_column(Float)
    wall_s: Mapped[float] = mapped_column(Float)
    link_dropouts: Mapped[int] = mapped_column(Integer)
    crash_dropouts: Mapped[int] = mapped_column(Integer)
    #: False for a round committed without a model update (too few updates arrived).
    updated: Mapped[bool] = mapped_column(Boolean, default=True)
    reward: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Per-user allocation: ids, bandwidth_hz, power_w, freq_hz, latency_s, energy_j, ...
    allocation: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Everything else measured in the round (losses, weights, survivors, timings).
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class EventRow(Base):
    """One fact of an experiment (:mod:`controller.events`); ``id`` orders them all."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class AgentRow(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64), doc="Ed25519 identity key, base64 raw.")
    enrolled_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    status: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """An engine plus a session factory; ``session()`` commits on success, rolls back on error."""

    def __init__(self, url: str) -> None:
        # pre-ping: a connection the server dropped (a PostgreSQL restart) is replaced, not
        # failed; allow_nan=False: NaN in a JSON column fails on SQLite as on PostgreSQL.
        kwargs: dict[str, Any] = {
            "pool_pre_ping": True,
            "json_serializer": functools.partial(json.dumps, allow_nan=False),
        }
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: Called with each commit's duration, s (the Prometheus histogram).
        self.on_commit: Callable[[float], None] | None = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            with session.begin():
                yield session
                body_done = time.perf_counter()
            if self.on_commit is not None:  # the commit's own time (measured)
                self.on_commit(time.perf_counter() - body_done)

    def experiment(self, session: Session, experiment_id: str) -> ExperimentRow | None:
        return session.get(ExperimentRow, experiment_id)

    def rounds(self, session: Session, experiment_id: str) -> list[RoundRow]:
        stmt = select(RoundRow).where(RoundRow.experiment_id == experiment_id)
        return list(session.scalars(stmt.order_by(RoundRow.index)))

    def dispose(self) -> None:
        self.engine.dispose()
