"""`testbed bench load`: lightweight agents against the real controller, memory O(model).

The smoke run: 40 agents on cifar_cnn (3.1 MB per update, 124 MB of uploads per round) for 2
rounds, through the real CLI and a real controller process, at most 4 uploads in flight at
once (``--upload-slots 4``: the controller's HTTP layer reads each body whole, so unthrottled
uploads all sit in memory while they arrive, whatever the board does with them afterwards).
Measured on a 2-core machine: when the board kept every upload of a stage until it closed, the
controller grew by 154-159 MB during the run; summing each upload as it arrives, by 52-62 MB
(the model, its float64 sum and update, the candidate, the bodies in flight). The bound, 80%
of one round's uploads, lies between the two.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from testbed.cli import app
from testbed.load_bench import MODEL_PARAMETERS, pick_model

AGENTS = 40
ROUNDS = 2


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    argv = ["bench", "load", "--agents", str(AGENTS), "--dim", "500000", "--rounds", str(ROUNDS)]
    res = CliRunner().invoke(app, [*argv, "--upload-slots", "4", "--json"])
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def test_model_sizes_are_the_built_in_models() -> None:
    from edge_agent.models import MODEL_NAMES, build_model, num_parameters

    assert sorted(MODEL_PARAMETERS) == sorted(MODEL_NAMES)
    for name, count in MODEL_PARAMETERS.items():
        assert num_parameters(build_model(name)) == count


@pytest.mark.parametrize(
    ("dim", "model"),
    [
        (1, "wifi_mlp"),
        (5_508, "wifi_mlp"),
        (5_509, "mnist_cnn"),
        (80_202, "mnist_cnn"),
        (80_203, "cifar_cnn"),
        (10**9, "cifar_cnn"),
    ],
)
def test_the_smallest_model_at_least_dim_else_the_largest(dim: int, model: str) -> None:
    assert pick_model(dim) == model


@pytest.mark.slow
def test_every_round_once_with_every_update(report: dict[str, Any]) -> None:
    assert report["completed"], report.get("controller_log_tail")
    assert (report["agents"], report["rounds"]) == (AGENTS, ROUNDS)
    assert (report["model"], report["dim"]) == ("cifar_cnn", MODEL_PARAMETERS["cifar_cnn"])
    assert report["rounds_lost"] == report["rounds_repeated"] == 0
    assert report["refused"] == {}
    kinds = report["requests_by_kind"]
    # init, then per round train and upload (the evaluation rides on the next round's training),
    # and one evaluate after the last round, from every agent
    assert kinds["submit"] == AGENTS * (1 + 2 * ROUNDS + 1)
    assert report["requests"] == sum(kinds.values())
    assert report["upload_mb"] >= ROUNDS * report["uploads_mb_per_round"]
    assert report["requests_per_s"] > 0
    assert report["mean_round_wall_s"] > 0


@pytest.mark.slow
def test_the_controller_does_not_keep_every_upload(report: dict[str, Any]) -> None:
    assert report["uploads_mb_per_round"] == pytest.approx(AGENTS * report["model_mb"], abs=0.1)
    assert report["rss_samples"] > 10
    assert report["peak_rss_mb"] >= report["rss_mb_before"] > 0
    assert report["rss_growth_mb"] < 0.8 * report["uploads_mb_per_round"], report
