"""`testbed reproduce s2 --scale smoke`, end to end through the simulator on the real data:
every table with one row per method (and setting) and numeric cells, finite t-tests, every
figure, the report in Markdown and HTML; a rerun into the same folder reuses every run."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reproduce.plan import ABLATIONS, METHODS, SCALES, TASKS
from reproduce.report import CSV_FILES
from testbed.cli import app

FIGURES = (
    "fig6_comparison.png",
    "fig7_convergence.png",
    "fig8_bandwidth.png",
    "fig9_multitask.png",
    "fig10_snr.png",
    "fig11_alpha.png",
    "fig_ablation.png",
    "fig_efficiency.png",
)
_TEXT_COLUMNS = {"method", "baseline", "metric", "task", "ue", "study", "setting"}
_BOOL_COLUMNS = {"significant_1pct", "proposed_better"}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _numeric(rows: list[dict[str, str]], name: str) -> None:
    for row in rows:
        for column, value in row.items():
            if column in _TEXT_COLUMNS or (column.startswith("paper_") and value == ""):
                continue
            if column in _BOOL_COLUMNS:
                assert value in ("True", "False"), (name, column, value)
                continue
            float(value)  # raises on anything that is not a number ("nan" and "inf" are)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reproduce")
    res = CliRunner().invoke(app, ["reproduce", "s2", "--scale", "smoke", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_every_table_has_its_rows_and_numbers(report: Path) -> None:
    scale = SCALES["smoke"]
    tables = {name: _rows(report / f"{name}.csv") for name in CSV_FILES}
    for name, rows in tables.items():
        assert rows, name
        assert "method" in rows[0], name
        _numeric(rows, name)
    for name in ("comparison", "efficiency"):
        assert [r["method"] for r in tables[name]] == list(METHODS)
        assert all(int(r["seeds"]) == scale.seeds for r in tables[name])
    assert [r["method"] for r in tables["ablation"]] == ["full", *ABLATIONS]
    snr = {(r["method"], float(r["snr_db"])) for r in tables["snr"]}
    assert snr == {(m, v) for m in METHODS for v in scale.snrs_db}
    alpha = {(r["method"], float(r["alpha"]), int(r["round"])) for r in tables["alpha"]}
    assert alpha == {
        (m, a, k) for m in METHODS for a in scale.alphas for k in range(1, scale.rounds + 1)
    }
    tasks = {(r["method"], r["task"]) for r in tables["multitask"]}
    assert tasks == {(m, t) for m in METHODS for t, *_ in TASKS}
    assert {r["method"] for r in tables["convergence"]} == set(METHODS)
    assert {r["ue"] for r in tables["bandwidth"]}
    assert all(float(r["model_bandwidth_hz"]) > 0 for r in tables["bandwidth"])
    for row in tables["comparison"]:
        assert 0.0 <= float(row["accuracy_mean"]) <= 1.0
        assert float(row["model_latency_s_mean"]) > 0
        assert float(row["model_energy_j_mean"]) > 0
        assert float(row["model_se_bit_s_hz_mean"]) > 0
        assert float(row["model_ee_bit_j_mean"]) > 0


def test_the_t_tests_are_finite(report: Path) -> None:
    rows = _rows(report / "ttest.csv")
    assert [r["metric"] for r in rows] == ["accuracy", "model_latency_s", "model_energy_j"]
    for row in rows:
        assert row["method"] == "proposed"
        assert row["baseline"] in METHODS
        assert row["baseline"] != "proposed"
        t, p = float(row["t"]), float(row["p"])
        assert math.isfinite(t)
        assert math.isfinite(p)
        assert 0.0 <= p <= 1.0
        assert int(row["n"]) == SCALES["smoke"].seeds


def test_report_figures_and_html(report: Path) -> None:
    for name in FIGURES:
        png = (report / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        assert len(png) > 5000, name
    md = (report / "report.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    for heading in ("Figure 6", "Figure 7", "Table 5", "Figure 8", "Figure 9", "Figure 10"):
        assert any(h.startswith(f"## {heading}:") for h in headings), heading
    for heading in ("Figure 11", "Table 6", "Uplink spectral and energy efficiency"):
        assert any(h.startswith(f"## {heading}") for h in headings), heading
    for name in FIGURES:
        assert f"({name})" in md, name
    assert "90.5%" in md  # the paper's number beside ours
    assert "1000 CIFAR-10 test images" in md
    html = (report / "report.html").read_text()
    assert "<table>" in html
    assert 'src="fig6_comparison.png"' in html


def test_a_rerun_reuses_every_run(report: Path) -> None:
    before = json.loads((report / "runs" / "comparison-proposed-s0" / "rounds.json").read_text())
    res = CliRunner().invoke(app, ["reproduce", "s2", "--scale", "smoke", "--out", str(report)])
    assert res.exit_code == 0, res.output
    md = (report / "report.md").read_text()
    assert "(0 run now, " in md
    after = json.loads((report / "runs" / "comparison-proposed-s0" / "rounds.json").read_text())
    assert after == before


def test_bad_arguments_are_named() -> None:
    res = CliRunner().invoke(app, ["reproduce", "s9"])
    assert res.exit_code != 0
    assert "PAPER" in res.output
    res = CliRunner().invoke(app, ["reproduce", "s2", "--scale", "huge"])
    assert res.exit_code != 0
    assert "--scale" in res.output
    res = CliRunner().invoke(app, ["reproduce", "s2", "--seeds", "1"])
    assert res.exit_code != 0
    assert "--seeds" in res.output
