"""The controller on PostgreSQL: schema, row round trips against SQLite's, constraints, restarts.

Every test gets a new, empty database on the session's throw-away cluster (``postgres_db`` in
tests/conftest.py). Where SQLite and PostgreSQL are meant to agree, the test runs on both.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, inspect
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from controller.db import AgentRow, Database, ExperimentRow, RoundRow
from protocol.spec import load_yaml
from testbed.testing import TOKEN, Server, make_settings

ROOT = Path(__file__).resolve().parents[2]
CREATED = dt.datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=dt.UTC)
ALLOCATION: dict[str, Any] = {
    "ue_ids": ["ue0", "ue1"],
    "bandwidth_hz": [1.0e6, 2.5e6],
    "power_w": [0.1, 1e-12],
    "gain": [[3.2e-11, 0.0], [1.0, -2.5]],
    "deadline_s": None,
    "anchor_frame": 2**53,
}
DETAILS: dict[str, Any] = {
    "survivors": ["ue0"],
    "weights": {"ue0": 0.25, "ue1": 0.75},
    "note": 'µs-scale, ünïcode and "quotes"',
    "link_skipped": True,
    "empty": {},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh :class:`Database` on SQLite (a file in tmp_path) or on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'controller.db'}"
    else:
        url = request.getfixturevalue("postgres_db")
    database = Database(url)
    yield database
    database.dispose()


def _experiment(experiment_id: str = "quickstart-0123abcd") -> ExperimentRow:
    return ExperimentRow(
        id=experiment_id,
        name="quickstart",
        spec_json='{"name": "quickstart", "fl": {"rounds": 8}}',
        status="running",
        next_round=3,
        model_version=2,
        model_path="/data/models/quickstart/2.safetensors",
        policy_path=None,
        error="a\nmulti-line error",
        created_at=CREATED,
        updated_at=CREATED + dt.timedelta(seconds=1),
    )


def _round(experiment_id: str, index: int) -> RoundRow:
    return RoundRow(
        experiment_id=experiment_id,
        index=index,
        accuracy=0.9123456789012345,
        loss=None,
        fairness_var=1e-300,
        model_latency_s=1.5,
        model_energy_j=0.1 + 0.2,
        model_time_s=12.25,
        mean_mcs_index=None,
        measured_train_s=3.0,
        measured_energy_j=None,
        overhead_s=0.0,
        wall_s=4.75,
        link_dropouts=1,
        crash_dropouts=0,
        updated=False,
        reward=-7.5,
        allocation=ALLOCATION,
        details=DETAILS,
        created_at=CREATED,
    )


def _agent() -> AgentRow:
    return AgentRow(
        id="ue0",
        profile="jetson-nano",
        public_key="MCowBQYDK2VwAyEA" + "A" * 43 + "=",
        enrolled_at=CREATED,
        last_seen=CREATED,
        status={"freq_hz": 1.5e9, "battery": None, "tags": ["a", "b"]},
    )


def _columns(row: Any) -> dict[str, Any]:
    """A row's column values, datetimes as aware UTC (SQLite hands back naive UTC)."""
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(value, dt.datetime):
            value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
            value = value.astimezone(dt.UTC)
        out[column.key] = value
    return out


def _read_back(database: Database) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    with database.session() as s:
        s.add_all([_experiment(), _agent()])
    with database.session() as s:
        s.add(_round("quickstart-0123abcd", 0))
    with database.session() as s:
        experiment = database.experiment(s, "quickstart-0123abcd")
        rounds = database.rounds(s, "quickstart-0123abcd")
        agent = s.get(AgentRow, "ue0")
        assert experiment is not None
        assert agent is not None
        assert len(rounds) == 1
        return _columns(experiment), _columns(rounds[0]), _columns(agent)


def test_schema_is_created_on_postgres(postgres_db: str) -> None:
    database = Database(postgres_db)
    try:
        schema = inspect(database.engine)
        assert set(schema.get_table_names()) == {"experiments", "rounds", "agents", "events"}
        uniques = schema.get_unique_constraints("rounds")
        assert [sorted(u["column_names"]) for u in uniques] == [["experiment_id", "index"]]
        (fk,) = schema.get_foreign_keys("rounds")
        assert fk["referred_table"] == "experiments"
        assert fk["options"].get("ondelete") == "CASCADE"
        types = {c["name"]: str(c["type"]) for c in schema.get_columns("rounds")}
        assert types["allocation"] == "JSON"
        assert types["created_at"] == "TIMESTAMP"
        # Creating the schema again on a database that has it is a no-op (a restart).
        Database(postgres_db).dispose()
    finally:
        database.dispose()


def test_rows_round_trip_with_the_values_sqlite_gives(tmp_path: Path, postgres_db: str) -> None:
    on_sqlite = Database(f"sqlite:///{tmp_path / 'controller.db'}")
    on_postgres = Database(postgres_db)
    try:
        sqlite_rows = _read_back(on_sqlite)
        postgres_rows = _read_back(on_postgres)
    finally:
        on_sqlite.dispose()
        on_postgres.dispose()
    assert postgres_rows == sqlite_rows
    experiment, round_, agent = postgres_rows
    assert experiment["created_at"] == CREATED
    assert experiment["error"] == "a\nmulti-line error"
    assert round_["allocation"] == ALLOCATION
    assert round_["details"] == DETAILS
    assert round_["model_energy_j"] == 0.1 + 0.2
    assert round_["fairness_var"] == 1e-300
    assert round_["updated"] is False
    assert agent["status"] == {"freq_hz": 1.5e9, "battery": None, "tags": ["a", "b"]}


def test_postgres_hands_back_aware_datetimes(postgres_db: str) -> None:
    """``timestamptz`` keeps the instant and hands back aware datetimes (in the server's
    TimeZone; UTC on the test cluster). SQLite drops the offset: naive, as written."""
    database = Database(postgres_db)
    try:
        plus_two = dt.timezone(dt.timedelta(hours=2))
        with database.session() as s:
            s.add(_experiment("defaulted"))
            row = _experiment("offset")
            row.created_at = dt.datetime(2024, 1, 1, 12, 0, tzinfo=plus_two)
            s.add(row)
        with database.session() as s:
            defaulted = database.experiment(s, "defaulted")
            offset = database.experiment(s, "offset")
        assert defaulted is not None
        assert offset is not None
        assert defaulted.created_at.tzinfo is not None
        assert offset.created_at.tzinfo is not None
        assert offset.created_at == dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC)
    finally:
        database.dispose()


def test_a_duplicate_round_index_raises_integrity_error(db: Database) -> None:
    with db.session() as s:
        s.add(_experiment())
    with db.session() as s:
        s.add(_round("quickstart-0123abcd", 0))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(_round("quickstart-0123abcd", 0))
    with db.session() as s:
        s.add(_round("quickstart-0123abcd", 1))  # the failed transaction left nothing behind
        s.add(_experiment("other"))
        s.add(_round("other", 0))  # the same index in another experiment is fine
    with db.session() as s:
        assert [r.index for r in db.rounds(s, "quickstart-0123abcd")] == [0, 1]


def test_a_round_of_an_unknown_experiment_raises_integrity_error(db: Database) -> None:
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(_round("nope", 0))


@pytest.mark.parametrize("how", ["orm", "sql"])
def test_deleting_an_experiment_deletes_its_rounds(db: Database, how: str) -> None:
    with db.session() as s:
        s.add_all([_experiment(), _experiment("kept")])
    with db.session() as s:
        s.add_all([_round("quickstart-0123abcd", i) for i in range(3)] + [_round("kept", 0)])
    with db.session() as s:
        if how == "orm":  # what DELETE /experiments/{id} does
            row = db.experiment(s, "quickstart-0123abcd")
            assert row is not None
            s.delete(row)
        else:
            s.execute(delete(ExperimentRow).where(ExperimentRow.id == "quickstart-0123abcd"))
    with db.session() as s:
        assert db.rounds(s, "quickstart-0123abcd") == []
        assert [r.index for r in db.rounds(s, "kept")] == [0]


def test_postgres_enforces_string_lengths_that_sqlite_ignores(tmp_path: Path, postgres_db: str):
    """``ExperimentRow.id`` is String(64): SQLite stores 65 characters, PostgreSQL refuses."""
    too_long = "x" * 65
    on_sqlite = Database(f"sqlite:///{tmp_path / 'controller.db'}")
    on_postgres = Database(postgres_db)
    try:
        with on_sqlite.session() as s:
            s.add(_experiment(too_long))
        with on_sqlite.session() as s:
            assert on_sqlite.experiment(s, too_long) is not None
        with (
            pytest.raises(DataError, match="character varying\\(64\\)"),
            on_postgres.session() as s,
        ):
            s.add(_experiment(too_long))
        with on_postgres.session() as s:
            s.add(_experiment("x" * 64))
    finally:
        on_sqlite.dispose()
        on_postgres.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_nan_in_json_columns_is_refused_on_both(
    backend: str, postgres_db: str, tmp_path: Path
) -> None:
    """PostgreSQL's ``json`` rejects NaN and Infinity; the controller's JSON serialiser refuses
    them first, on both backends alike (SQLite would store them): rows hold finite numbers or
    None, as the round records' ``_finite_or_none`` makes them."""
    url = postgres_db if backend == "postgresql" else f"sqlite:///{tmp_path / 'c.db'}"
    database = Database(url)
    try:
        with database.session() as s:
            s.add(_experiment())
        for bad in (math.nan, math.inf):
            row = _round("quickstart-0123abcd", 0)
            row.details = {"loss": bad}
            refused = pytest.raises((StatementError, ValueError), match="JSON compliant")
            with refused, database.session() as s:
                s.add(row)
    finally:
        database.dispose()


def _spec() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml((ROOT / "examples/quickstart.yaml").read_text())
    return data


def _operator(server: Server) -> httpx.Client:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=10)


def test_controller_on_postgres_keeps_experiments_across_a_restart(
    tmp_path: Path, postgres_db: str
) -> None:
    with (
        Server(make_settings(tmp_path, database_url=postgres_db)) as server,
        _operator(server) as operator,
    ):
        created = operator.post("/experiments", json=_spec())
        assert created.status_code == 201, created.text
        experiment = created.json()
        assert experiment["status"] == "created"
        listed = operator.get("/experiments").json()
        assert [e["id"] for e in listed] == [experiment["id"]]
        other = operator.post("/experiments", json={**_spec(), "name": "second"}).json()
        assert operator.delete(f"/experiments/{other['id']}").status_code == 204

    # A new process on the same database and data directory.
    with (
        Server(make_settings(tmp_path, database_url=postgres_db)) as server,
        _operator(server) as operator,
    ):
        listed = operator.get("/experiments").json()
        assert [e["id"] for e in listed] == [experiment["id"]]
        again = operator.get(f"/experiments/{experiment['id']}").json()
        assert again["name"] == "quickstart"
        assert again["status"] == "created"
        assert again["rounds_total"] == 8
        assert again["rounds_completed"] == 0
        created_at = dt.datetime.fromisoformat(again["created_at"])
        assert created_at == dt.datetime.fromisoformat(experiment["created_at"])
        spec = operator.get(f"/experiments/{experiment['id']}/spec").json()
        assert spec["name"] == "quickstart"
        assert spec["fl"]["rounds"] == 8
        assert operator.get(f"/experiments/{experiment['id']}/rounds").json() == []
        assert operator.delete(f"/experiments/{experiment['id']}").status_code == 204
        assert operator.get("/experiments").json() == []
