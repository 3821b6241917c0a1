"""`testbed reproduce s1 --scale smoke`: the Fed-MARL comparison's report, tables and figures."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from typer.testing import CliRunner

from fedmarl.policies import METHODS
from reproduce.s1 import S1_SCALES
from testbed.cli import app


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_reproduce_s1_smoke(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["reproduce", "s1", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    agents = S1_SCALES["smoke"].agents
    rows = _rows(tmp_path / "comparison.csv")
    assert {(r["method"], int(r["agents"])) for r in rows} == {
        (m, n) for m in METHODS for n in agents
    }
    for r in rows:
        for key in ("success_rate", "bits_per_joule", "jain", "reliability", "s_per_episode"):
            assert math.isfinite(float(r[key])), (r["method"], key)
    overhead = _rows(tmp_path / "overhead.csv")
    assert [int(o["agents"]) for o in overhead] == list(agents)
    assert all(
        float(o["secure_bytes_per_agent"]) > float(o["plain_bytes_per_agent"]) / 2 for o in overhead
    )
    curves = _rows(tmp_path / "curves.csv")
    assert {r["method"] for r in curves} >= {"fedmarl", "centralised", "dqn"}
    for name in ("fig_agents.png", "fig_rewards.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    md = (tmp_path / "report.md").read_text()
    assert "96.83%" in md
    assert "(fig_agents.png)" in md
    assert "<table>" in (tmp_path / "report.html").read_text()


def test_reproduce_s1_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["reproduce", "s1", "--engine", "processes", "--out", str(tmp_path)]
    )
    assert res.exit_code != 0
    assert "--engine" in res.output
