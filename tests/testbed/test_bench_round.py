"""`testbed bench round`: its figures from round records, and a small real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.round_bench import round_figures, run_round_bench


def test_figures_from_round_records() -> None:
    rounds = [
        {"wall_s": 10.0, "measured_train_s": 5.0, "details": {"stage_s": {"train": 6.0}}},
        {"wall_s": 4.0, "measured_train_s": 3.0, "details": {"stage_s": {"train": 3.5}}},
    ]
    got = round_figures(rounds)
    assert got["mean_round_wall_s"] == 7.0
    assert got["mean_train_s"] == 4.0
    assert got["overhead_fraction"] == pytest.approx((0.5 + 0.25) / 2)
    assert got["stages_s"] == {"train": 4.75}


@pytest.mark.slow
def test_a_small_real_run(tmp_path: Path) -> None:
    result = run_round_bench(tmp_path / "run", agents=2, rounds=2, secure=False)
    assert result["rounds"] == 2
    assert 0.0 <= result["overhead_fraction"] < 1.0
    assert result["mean_train_s"] > 0
    assert {"train", "upload", "evaluate"} <= set(result["stages_s"])
    assert (tmp_path / "run" / "rounds.json").exists()
