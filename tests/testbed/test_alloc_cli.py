"""`testbed alloc solve` and `testbed train power-policy`, run through the real CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from controller.allocation.scenario import random_instance
from testbed.alloc_file import InstanceModel
from testbed.cli import app

runner = CliRunner()


@pytest.fixture
def instance_file(tmp_path: Path) -> Path:
    inst = random_instance(np.random.default_rng(7), 5, levels="mixed")
    path = tmp_path / "inst.json"
    path.write_text(InstanceModel.from_instance(inst).model_dump_json(by_alias=True))
    return path


@pytest.mark.parametrize("bandwidth", ["softmax", "exact"])
@pytest.mark.parametrize("power", ["max", "convex"])
def test_solve_prints_one_feasible_json_object(
    instance_file: Path, bandwidth: str, power: str
) -> None:
    res = runner.invoke(
        app,
        [
            "alloc",
            "solve",
            str(instance_file),
            "--bandwidth",
            bandwidth,
            "--power",
            power,
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("bandwidth_hz", "power_w", "freq_hz", "latency_s", "energy_j"):
        assert len(out[key]) == 5
    doc = json.loads(instance_file.read_text())
    assert sum(out["bandwidth_hz"]) <= doc["bandwidth_hz"] * (1 + 1e-9)
    assert max(out["power_w"]) <= doc["p_max_w"]
    assert out["round_latency_s"] == pytest.approx(max(out["latency_s"]))
    w = doc["weights"]
    assert out["objective"] == pytest.approx(
        w["gamma"] * out["round_latency_s"] + w["beta"] * sum(out["energy_j"])
    )


def test_solve_human_output(instance_file: Path) -> None:
    res = runner.invoke(app, ["alloc", "solve", str(instance_file)])
    assert res.exit_code == 0
    assert "round latency" in res.stdout


def test_bad_instance_names_the_field(tmp_path: Path, instance_file: Path) -> None:
    doc = json.loads(instance_file.read_text())
    doc["users"][2]["f_levels_hz"] = [2e9, 1e9]
    doc["users"][2].pop("f_min_hz", None)
    doc["users"][2].pop("f_max_hz", None)
    doc["users"][0]["gain"] = -1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    res = runner.invoke(app, ["alloc", "solve", str(bad), "--json"])
    assert res.exit_code == 2
    assert "users.2.f_levels_hz" in res.stderr
    assert "users.0.gain" in res.stderr
    res = runner.invoke(app, ["alloc", "solve", str(tmp_path / "nope.json")])
    assert res.exit_code == 2
    assert "cannot read" in res.stderr


def test_drl_needs_a_policy_and_unknown_policy_is_clear(
    instance_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = runner.invoke(app, ["alloc", "solve", str(instance_file), "--power", "drl"])
    assert res.exit_code == 2
    assert "--policy" in res.stderr
    from controller.policy import store as policy_store

    monkeypatch.setenv("TESTBED_POLICY_DIR", str(tmp_path))
    policy_store.get_policy_settings.cache_clear()
    res = runner.invoke(
        app, ["alloc", "solve", str(instance_file), "--power", "drl", "--policy", "ghost"]
    )
    assert res.exit_code == 2
    assert "ghost" in res.stderr


def test_train_then_solve_with_the_trained_policy(
    instance_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controller.policy import store as policy_store

    monkeypatch.setenv("TESTBED_POLICY_DIR", str(tmp_path / "pol"))
    policy_store.get_policy_settings.cache_clear()
    res = runner.invoke(
        app,
        [
            "train", "power-policy", "--name", "tiny", "--iterations", "2", "--batch", "2",
            "--users-min", "3", "--users-max", "4", "--json",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["policy"].endswith("tiny.pt")
    assert report["iterations"] == 2
    res = runner.invoke(
        app,
        ["alloc", "solve", str(instance_file), "--power", "drl", "--policy", "tiny", "--json"],
    )
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["power_w"]) == 5
    policy_store.get_policy_settings.cache_clear()
