"""The simulator at 1,000 UEs for two rounds (the benchmark's workload, small)."""

from __future__ import annotations

import pytest

from testbed.scale_bench import run_scale_bench

pytestmark = pytest.mark.slow


def test_thousand_ues_two_rounds() -> None:
    out = run_scale_bench(1000, rounds=2)
    assert (out["ues"], out["rounds"], out["channel"], out["samples_per_ue"]) == (
        1000,
        2,
        "sampled",
        60,
    )
    for key in ("s_per_round", "train_samples_per_s", "peak_rss_mb", "rss_mb_per_1000_ues"):
        assert out[key] > 0, key
    assert set(out["split_s"]) == {"plan", "score", "link", "train", "aggregate", "evaluate"}
    assert out["split_s"]["train"] > 0
    assert out["split_s"]["plan"] > 0
    assert 0.0 < out["final_accuracy"] <= 1.0
    assert 0 < out["model_link_dropouts_per_round"] < 1000  # some arrive, the radio loses some
