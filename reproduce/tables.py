"""The report's tables, from the runs: one list of rows per CSV file, each row with ``method``.

Means and 95% intervals are over seeds (:func:`reproduce.stats.mean_ci`); columns named
``model_*`` hold modelled quantities (system model, link layer), the others measured ones
(accuracy on the test set, the loss variance of real training). The paper's numbers sit in
``paper_*`` columns, empty where it gives none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from reproduce import paper
from reproduce.measures import RunMeasures, accuracy_curve, measure
from reproduce.plan import ABLATIONS, METHODS, TASKS, Cell, Scale
from reproduce.runner import Run
from reproduce.stats import mean_ci, paired_t_test

__all__ = [
    "Result",
    "Row",
    "ablation",
    "alpha",
    "bandwidth",
    "comparison",
    "convergence",
    "efficiency",
    "multitask",
    "results",
    "snr",
    "strongest_baseline",
    "ttest",
]

Row = dict[str, Any]
_METRICS = tuple(f.name for f in fields(RunMeasures))
#: Table 5's metrics: (column, higher is better).
_TESTED = (("accuracy", True), ("model_latency_s", False), ("model_energy_j", False))


@dataclass(frozen=True)
class Result:
    """One cell with its rounds and its metrics."""

    cell: Cell
    rounds: Run
    measures: RunMeasures


def results(cells: Sequence[Cell], runs: dict[str, Run], scale: Scale) -> list[Result]:
    """Each cell's :class:`Result` (its rounds from ``runs``)."""
    return [
        Result(c, runs[c.key], measure(c.spec, runs[c.key], scale.target_accuracy)) for c in cells
    ]


def _pick(rs: Sequence[Result], study: str, method: str, setting: Any = None) -> list[Result]:
    """The runs of one method (and setting) of a study, in seed order."""
    found = [r for r in rs if r.cell.study == study and r.cell.method == method]
    found = [r for r in found if r.cell.setting == setting]
    return sorted(found, key=lambda r: r.cell.seed)


def _summary(runs: Sequence[Result], names: Sequence[str] = _METRICS) -> Row:
    row: Row = {"seeds": len(runs)}
    for name in names:
        mean, ci = mean_ci([getattr(r.measures, name) for r in runs])
        row[f"{name}_mean"], row[f"{name}_ci95"] = mean, ci
    return row


def comparison(rs: Sequence[Result]) -> list[Row]:
    """Figure 6: every method's metrics (CIFAR-10, alpha 0.5), mean and 95% interval."""
    rows = []
    for method in METHODS:
        runs = _pick(rs, "comparison", method)
        reached = sum(math.isfinite(r.measures.rounds_to_target) for r in runs)
        p = paper.COMPARISON[method]
        rows.append(
            {
                "method": method,
                **_summary(runs),
                "target_reached_seeds": reached,
                "paper_accuracy": p["accuracy"],
                "paper_model_latency_s": p["latency_s"],
                "paper_model_energy_j": p["energy_j"],
                "paper_fairness_var": p["fairness_var"],
                "paper_rounds_to_90pct": paper.ROUNDS_TO_90.get(method),
            }
        )
    return rows


def _curve(runs: Sequence[Result], key: str) -> list[tuple[float, float, float]]:
    """Per round: mean accuracy, its 95% half-width, mean of ``key`` (e.g. modelled time)."""
    if not runs:
        return []
    n = min(len(r.rounds) for r in runs)
    out = []
    for i in range(n):
        acc, ci = mean_ci([accuracy_curve(r.rounds)[i] for r in runs])
        other, _ = mean_ci([float(r.rounds[i][key]) for r in runs])
        out.append((acc, ci, other))
    return out


def convergence(rs: Sequence[Result]) -> list[Row]:
    """Figure 7: accuracy after each round and the modelled time it took, per method."""
    rows = []
    for method in METHODS:
        for i, (acc, ci, t) in enumerate(_curve(_pick(rs, "comparison", method), "model_time_s")):
            rows.append(
                {
                    "method": method,
                    "round": i + 1,
                    "accuracy_mean": acc,
                    "accuracy_ci95": ci,
                    "model_time_s_mean": t,
                }
            )
    return rows


def bandwidth(rs: Sequence[Result], scale: Scale) -> list[Row]:
    """Figure 8: the proposed method's bandwidth per UE and round (seed 0), beside the
    estimated channel gain ``G^`` it was planned with."""
    runs = _pick(rs, "comparison", "proposed")
    if not runs:
        return []
    rows = []
    for r in runs[0].rounds[: scale.bandwidth_rounds]:
        alloc = r["allocation"]
        for ue, b, g in list(
            zip(alloc["ue_ids"], alloc["bandwidth_hz"], alloc["gain"], strict=True)
        )[: scale.bandwidth_ues]:
            rows.append(
                {
                    "method": "proposed",
                    "round": int(r["index"]) + 1,
                    "ue": ue,
                    "model_bandwidth_hz": float(b),
                    "gain_db": 10.0 * math.log10(g) if g > 0 else math.nan,
                }
            )
    return rows


def multitask(rs: Sequence[Result]) -> list[Row]:
    """Figure 9: each task's accuracy after each round, per method."""
    rows = []
    for method in METHODS:
        for task, *_ in TASKS:
            for run in _pick(rs, "multitask", method, task):
                for i, acc in enumerate(accuracy_curve(run.rounds)):
                    rows.append({"method": method, "task": task, "round": i + 1, "accuracy": acc})
    return rows


def snr(rs: Sequence[Result], scale: Scale) -> list[Row]:
    """Figure 10: final accuracy and link dropouts against the pilot SNR, per method."""
    rows = []
    for method in METHODS:
        for value in scale.snrs_db:
            runs = _pick(rs, "snr", method, value)
            rows.append(
                {
                    "method": method,
                    "snr_db": value,
                    **_summary(runs, ("accuracy", "model_dropout_rate", "model_latency_s")),
                }
            )
    return rows


def alpha(rs: Sequence[Result], scale: Scale) -> list[Row]:
    """Figure 11: accuracy after each round for each Dirichlet alpha, per method (alpha 0.5:
    the comparison's runs of the sweep's seeds)."""
    rows = []
    for method in METHODS:
        for value in scale.alphas:
            runs = (
                [r for r in _pick(rs, "comparison", method) if r.cell.seed < scale.sweep_seeds]
                if value == 0.5
                else _pick(rs, "alpha", method, value)
            )
            for i, (acc, ci, _) in enumerate(_curve(runs, "model_time_s")):
                rows.append(
                    {
                        "method": method,
                        "alpha": value,
                        "round": i + 1,
                        "accuracy_mean": acc,
                        "accuracy_ci95": ci,
                    }
                )
    return rows


def strongest_baseline(rs: Sequence[Result]) -> str:
    """The baseline with the highest mean final accuracy in the comparison."""
    means = {
        m: mean_ci([r.measures.accuracy for r in _pick(rs, "comparison", m)])[0]
        for m in METHODS
        if m != "proposed"
    }
    return max(means, key=lambda m: (math.isfinite(means[m]), means[m]))


def _test_row(a: Sequence[Result], b: Sequence[Result], metric: str, better_high: bool) -> Row:
    """Paired t-test of ``metric`` between the runs ``a`` and ``b``, paired by seed and
    oriented so that a positive ``t`` means ``a`` is better (higher accuracy, lower latency or
    energy), as the paper reports it. NaN where fewer than two seeds pair up."""
    mine = {r.cell.seed: getattr(r.measures, metric) for r in a}
    theirs = {r.cell.seed: getattr(r.measures, metric) for r in b}
    seeds = sorted(mine.keys() & theirs.keys())
    better, worse = ([mine[k] for k in seeds], [theirs[k] for k in seeds])
    if not better_high:
        better, worse = worse, better
    try:
        test = paired_t_test(better, worse)
    except ValueError:
        return {
            "metric": metric,
            "n": 0,
            "mean_gain": math.nan,
            "t": math.nan,
            "p": math.nan,
            "significant_1pct": False,
            "proposed_better": False,
        }
    return {
        "metric": metric,
        "n": test.n,
        "mean_gain": test.mean_diff,
        "t": test.t,
        "p": test.p,
        "significant_1pct": test.significant,
        "proposed_better": test.mean_diff > 0,
    }


def ttest(rs: Sequence[Result]) -> list[Row]:
    """Table 5: paired t-tests of the proposed method against the strongest baseline."""
    base = strongest_baseline(rs)
    mine, theirs = _pick(rs, "comparison", "proposed"), _pick(rs, "comparison", base)
    return [
        {
            "method": "proposed",
            "baseline": base,
            **_test_row(mine, theirs, metric, high),
            "paper_t": paper.TTEST[metric],
        }
        for metric, high in _TESTED
    ]


def ablation(rs: Sequence[Result]) -> list[Row]:
    """Table 6: the full method and each variant without one module, with a paired t-test of
    the variant's accuracy against the full method's."""
    full = _pick(rs, "comparison", "proposed")
    rows = []
    for variant in ("full", *ABLATIONS):
        runs = full if variant == "full" else _pick(rs, "ablation", variant)
        row: Row = {
            "method": variant,
            **_summary(runs, ("accuracy", "model_latency_s", "model_energy_j", "fairness_var")),
        }
        if variant != "full":
            test = _test_row(runs, full, "accuracy", True)
            row.update(t_accuracy_vs_full=test["t"], p_accuracy_vs_full=test["p"])
        else:
            row.update(t_accuracy_vs_full=math.nan, p_accuracy_vs_full=math.nan)
        p = paper.ABLATION[variant]
        row.update(
            paper_accuracy=p["accuracy"],
            paper_model_latency_s=p["latency_s"],
            paper_model_energy_j=p["energy_j"],
        )
        rows.append(row)
    return rows


def efficiency(rs: Sequence[Result]) -> list[Row]:
    """Section 4.3: uplink spectral and energy efficiency per method."""
    rows = []
    for method in METHODS:
        row = {"method": method, **_summary(_pick(rs, "comparison", method), _EFFICIENCY)}
        mine = method == "proposed"
        row["paper_model_se_bit_s_hz"] = paper.EFFICIENCY["se_bit_s_hz"] if mine else None
        row["paper_model_ee_bit_j"] = paper.EFFICIENCY["ee_bit_j"] if mine else None
        rows.append(row)
    return rows


_EFFICIENCY = ("model_se_bit_s_hz", "model_ee_bit_j")
