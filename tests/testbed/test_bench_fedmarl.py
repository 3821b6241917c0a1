"""`testbed bench fedmarl --json`: one row per (method, agents) with the required fields."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fedmarl.policies import METHODS
from testbed.cli import app


def test_bench_fedmarl_rows() -> None:
    args = ["bench", "fedmarl", "--agents", "3,4", "--episodes", "2", "--slots", "30", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {"success_rate", "bits_per_joule", "jain"} <= set(out["modelled"])
    assert "s_per_episode" in out["measured"]
    pairs = {(r["method"], r["agents"]) for r in out["rows"]}
    assert pairs == {(m, n) for m in METHODS for n in (3, 4)}
    for row in out["rows"]:
        for key in ("success_rate", "bits_per_joule", "jain", "s_per_episode"):
            assert isinstance(row[key], float), (row["method"], key)
        assert 0.0 <= row["success_rate"] <= 1.0
        assert 0.0 < row["jain"] <= 1.0
    fed = [r for r in out["rows"] if r["method"] == "fedmarl"]
    assert all(r["federation_bytes_per_agent"] > 0 for r in fed)  # secure rounds ran


def test_bench_fedmarl_bad_arguments_are_named() -> None:
    res = CliRunner().invoke(app, ["bench", "fedmarl", "--agents", "5,x"])
    assert res.exit_code != 0
    assert "--agents" in res.output
    res = CliRunner().invoke(app, ["bench", "fedmarl", "--agents", "4", "--methods", "oracle"])
    assert res.exit_code != 0
    assert "oracle" in res.output
