"""`testbed bench link`: the seeded cell-edge link study through the real CLI, and its physics."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from testbed.cli import app
from testbed.link_bench import ALGORITHMS, DEFAULT_SNRS_DB, MNIST_CNN_PARAMETERS, link_study

Row = dict[str, Any]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """``testbed bench link --rounds 3 --json`` on the built-in cell-edge scenario (seed 0)."""
    res = CliRunner().invoke(app, ["bench", "link", "--rounds", "3", "--json"])
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def _by_snr(rows: list[Row]) -> dict[float | None, dict[str, Row]]:
    out: dict[float | None, dict[str, Row]] = {}
    for r in rows:
        out.setdefault(r["snr_db"], {})[r["algorithm"]] = r
    return out


def test_cli_prints_one_row_per_algorithm_and_snr(report: dict[str, Any]) -> None:
    rows = report["rows"]
    assert report["scenario"]["name"] == "link-cell-edge"
    assert sorted((r["algorithm"], str(r["snr_db"])) for r in rows) == sorted(
        (a, str(s)) for a in ALGORITHMS for s in DEFAULT_SNRS_DB
    )
    for r in rows:
        assert 0.0 <= r["link_dropout_rate"] <= 1.0
        assert r["link_dropouts"] == r["late"] + r["failed"] + r["outage"]
        assert r["link_dropout_rate"] == pytest.approx(r["link_dropouts"] / (3 * 8))
        assert (r["rounds"], r["ues"]) == (3, 8)
        sent = r["mean_mcs_index"] is not None
        assert sent == (r["outage"] < 3 * 8)
        if sent:
            assert 0 <= r["mean_mcs_index"] <= 28
            assert r["mean_retries"] >= 0
        assert r["model_latency_s"] <= report["scenario"]["deadline_s"] + 1e-9
        assert r["model_energy_j"] > 0


def test_the_cell_edge_is_at_the_cell_edge(report: dict[str, Any]) -> None:
    distances = report["scenario"]["nearest_ap_m"]
    assert min(distances) >= 300.0
    assert max(distances) <= 610.0


def test_sweep_spans_fedavg_from_losing_every_update_to_none(report: dict[str, Any]) -> None:
    rates = [r["link_dropout_rate"] for r in report["rows"] if r["algorithm"] == "fedavg"]
    assert max(rates) == 1.0
    assert min(rates) == 0.0
    assert any(0.0 < x < 1.0 for x in rates)


@pytest.mark.xfail(
    strict=True,
    reason="The physics says otherwise (seed 0, 20 rounds: at -10/-8/-5 dB proposed loses "
    "100/86/3% of updates, FedAvg 2.5/0/0%): CRA+CSM plan on Shannon-rate latency, so CSM "
    "slows the boards until no slack is left for the MCS rate (3 dB back-off, ~30-60% of "
    "Shannon), and the untrained DRL policy sends at about half of P_max. Remove this mark "
    "once proposed plans against the MCS rate and the deadline.",
)
def test_proposed_loses_fewer_updates_than_fedavg_at_the_cell_edge(
    report: dict[str, Any],
) -> None:
    by_snr = _by_snr(report["rows"])
    lost = {a: sum(r[a]["link_dropouts"] for r in by_snr.values()) for a in ALGORITHMS}
    assert lost["proposed"] < lost["fedavg"]
    for snr, r in by_snr.items():
        assert r["proposed"]["link_dropouts"] <= r["fedavg"]["link_dropouts"], snr


def test_proposed_spends_less_energy_than_fedavg_at_every_snr(report: dict[str, Any]) -> None:
    for snr, r in _by_snr(report["rows"]).items():
        assert r["proposed"]["model_energy_j"] < r["fedavg"]["model_energy_j"], snr


def test_no_dropouts_at_a_very_high_snr_and_some_at_a_very_low_one() -> None:
    out = link_study(snrs_db=(-30.0, 30.0), rounds=2)
    by_snr = _by_snr(out["rows"])
    for algorithm in ALGORITHMS:
        assert by_snr[30.0][algorithm]["link_dropouts"] == 0
        assert by_snr[30.0][algorithm]["mean_mcs_index"] > 20
        assert by_snr[-30.0][algorithm]["link_dropouts"] > 0


def test_update_size_is_the_mnist_cnn() -> None:
    from edge_agent.models import build_model

    model = build_model("mnist_cnn")
    assert sum(p.numel() for p in model.parameters()) == MNIST_CNN_PARAMETERS
