"""Chaos: the controller SIGKILLed at seeded random moments of a running experiment with
secure aggregation (`testbed bench chaos`), on SQLite and on a real PostgreSQL server.

Every round must appear exactly once, every committed model file must hash to what its round
recorded, and the experiment must complete.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.chaos_bench import run_chaos


def _check(result: dict[str, object], kills: int, rounds: int) -> None:
    assert result["kills_done"] == kills, result
    assert result["completed"], result
    assert result["rounds_lost"] == 0, result
    assert result["rounds_repeated"] == 0, result
    assert result["rounds_committed"] == rounds, result
    assert result["model_files_checked"] == rounds, result
    assert result["model_mismatches"] == 0, result


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_twenty_kills_on_sqlite(tmp_path: Path) -> None:
    # A kill costs the round in progress; kills 0.5-4 s apart spread over the 12 rounds where a
    # round (3 agents, 300 samples each) takes about 3 s, and where the machine outruns them,
    # the rest land in the last round.
    result = run_chaos(tmp_path, kills=20, seed=1, rounds=12, max_delay_s=4.0)
    _check(result, kills=20, rounds=12)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kills_on_postgresql(tmp_path: Path, postgres_db: str) -> None:
    result = run_chaos(
        tmp_path, kills=6, seed=2, rounds=6, max_delay_s=4.0, database_url=postgres_db
    )
    assert result["database"] == "postgresql"
    _check(result, kills=6, rounds=6)
