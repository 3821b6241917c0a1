"""One run's metrics from its rounds, and the plan's promise that methods differ only in the
algorithm."""

from __future__ import annotations

import math
from typing import Any

import pytest

from reproduce.measures import RunMeasures, measure, update_bits
from reproduce.plan import METHODS, SCALES, Cell, cells, study_spec
from reproduce.tables import Result, strongest_baseline, ttest


def _round(
    index: int, acc: float, status: list[str], airtime: list[float], energy: list[float]
) -> dict[str, Any]:
    return {
        "index": index,
        "accuracy": acc,
        "fairness_var": 0.1 * (index + 1),
        "model_latency_s": 2.0 + index,
        "model_energy_j": 1.0,
        "model_time_s": 0.0,
        "link_dropouts": status.count("failed"),
        "allocation": {"ue_ids": ["a", "b"]},
        "details": {
            "link": {
                "ue_ids": ["a", "b"],
                "status": status,
                "model_airtime_s": airtime,
                "model_comm_energy_j": energy,
            }
        },
    }


def test_measures_of_known_rounds() -> None:
    spec = study_spec(SCALES["smoke"], name="m", method="proposed", seed=0)
    s = update_bits(spec)
    band = spec.radio.bandwidth_hz
    rounds = [
        _round(0, 0.2, ["arrived", "arrived"], [0.5, 0.25], [0.1, 0.1]),
        _round(1, 0.4, ["arrived", "failed"], [1.0, 3.0], [0.2, 0.6]),
    ]
    m = measure(spec, rounds, target=0.3)
    assert m.accuracy == 0.4
    assert m.fairness_var == pytest.approx(0.15)
    assert m.model_latency_s == pytest.approx(2.5)
    assert m.model_dropout_rate == pytest.approx(0.25)  # one of four planned updates lost
    assert m.rounds_to_target == 2.0
    se0, se1 = (s / 0.5 + s / 0.25) / band, (s / 1.0) / band
    assert m.model_se_bit_s_hz == pytest.approx((se0 + se1) / 2)
    assert m.model_ee_bit_j == pytest.approx(3 * s / 1.0)  # 3 updates delivered for 1 J sent
    assert math.isnan(measure(spec, rounds, target=0.9).rounds_to_target)


def test_every_method_of_a_study_gets_the_same_experiment_but_its_algorithm() -> None:
    scale = SCALES["smoke"]
    by_study: dict[tuple[str, Any, int], list[dict[str, Any]]] = {}
    for cell in cells(scale):
        if cell.study == "ablation":
            continue
        dumped = cell.spec.model_dump(by_alias=True)
        assert dumped["algorithm"]["name"] == cell.method
        del dumped["algorithm"], dumped["name"]
        by_study.setdefault((cell.study, cell.setting, cell.seed), []).append(dumped)
    for key, specs in by_study.items():
        assert len(specs) == len(METHODS), key
        assert all(s == specs[0] for s in specs), key
    keys = [c.key for c in cells(scale)]
    assert len(keys) == len(set(keys))


def _result(method: str, seed: int, accuracy: float, latency: float) -> Result:
    spec = study_spec(SCALES["smoke"], name="t", method=method, seed=seed)
    m = RunMeasures(accuracy, 0.1, latency, 1.0, 0.0, math.nan, 1.0, 1.0)
    return Result(Cell("comparison", method, None, seed, spec), [], m)


def test_table5_pairs_by_seed_and_a_positive_t_means_proposed_is_better() -> None:
    # Proposed: more accurate and faster on every seed; listed out of seed order.
    runs = [
        _result("proposed", 1, 0.62, 2.0),
        _result("proposed", 0, 0.60, 1.0),
        _result("proposed", 2, 0.55, 3.5),
        *(
            _result(m, s, 0.10, 9.0)
            for m in METHODS
            if m not in ("proposed", "jcc")
            for s in range(3)
        ),
        _result("jcc", 0, 0.50, 1.5),
        _result("jcc", 2, 0.54, 4.5),
        _result("jcc", 1, 0.58, 3.0),
    ]
    assert strongest_baseline(runs) == "jcc"
    rows = {r["metric"]: r for r in ttest(runs)}
    acc, lat = rows["accuracy"], rows["model_latency_s"]
    assert acc["n"] == 3
    assert acc["mean_gain"] == pytest.approx((0.10 + 0.04 + 0.01) / 3)  # paired by seed
    assert acc["t"] > 0
    assert acc["proposed_better"]
    assert lat["mean_gain"] == pytest.approx((0.5 + 1.0 + 1.0) / 3)  # baseline minus proposed
    assert lat["t"] > 0
    assert lat["proposed_better"]
