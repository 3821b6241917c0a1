"""Writes a reproduction's folder: the CSV tables, the figures, ``report.md`` and ``report.html``.

Beside every table and figure the report sets the paper's numbers and ours, and says why they
differ. What it says about our numbers is computed from them (ranks, signs, correlations);
what it says about the setup comes from the scale and the specs that ran.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reproduce import figures, paper, tables
from reproduce.measures import finite_mean
from reproduce.plan import ABLATIONS, METHODS, TASKS, Scale
from reproduce.tables import Result, Row

__all__ = [
    "CSV_FILES",
    "ReportFacts",
    "fmt",
    "md_table",
    "write_csv",
    "write_html",
    "write_report",
]

#: The tables the report writes (``DIR/<name>.csv``).
CSV_FILES = (
    "comparison",
    "convergence",
    "bandwidth",
    "multitask",
    "snr",
    "alpha",
    "ttest",
    "ablation",
    "efficiency",
    "runs",
)


@dataclass(frozen=True)
class ReportFacts:
    """How the reproduction was made (the report's header)."""

    scale: Scale
    engine: str
    version: str
    measured_wall_s: float
    runs_made: int
    runs_reused: int


def write_csv(rows: Sequence[Row], path: Path) -> None:
    """``rows`` as CSV (the union of their keys as columns; None empty, NaN ``nan``)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return v


def fmt(v: Any, digits: int = 3, pct: bool = False) -> str:
    """A cell of the report: ``-`` for none or NaN, a percentage, or a number."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "inf" if isinstance(v, float) and math.isinf(v) else "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float | int) and not isinstance(v, bool):
        if pct:
            return f"{100 * v:.1f}%"
        if abs(v) >= 1e4 or (0 < abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.{digits}f}"
    return str(v)


def _pm(row: Row, name: str, pct: bool = False, digits: int = 3) -> str:
    mean, ci = row[f"{name}_mean"], row[f"{name}_ci95"]
    if not math.isfinite(ci):
        return fmt(mean, digits, pct)
    return f"{fmt(mean, digits, pct)} ± {fmt(ci, digits, pct)}"


def md_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _rank(rows: Sequence[Row], column: str, high: bool = True) -> list[str]:
    finite = [r for r in rows if math.isfinite(r[column])]
    ordered = sorted(finite, key=lambda r: r[column], reverse=high)
    return [r["method"] for r in ordered]


def _test_accuracy_se(accuracy: float, n_test: int) -> float:
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / n_test) if n_test else math.nan


def _why(scale: Scale, n_params: int, n_test: int, acc: float) -> str:
    se = _test_accuracy_se(acc, n_test) if math.isfinite(acc) else math.nan
    return (
        f"Why ours differ: our CIFAR-10 model is a {n_params / 1e6:.2f}M-parameter CNN trained "
        f"for {scale.rounds} rounds of one local epoch over {scale.samples_per_client} samples "
        f"per client on {scale.ues} UEs (the paper gives neither its model nor its budget and "
        f"shows curves to about 200 rounds); test accuracy is measured on the {n_test} CIFAR-10 "
        f"test images we have, whose standard error is about {fmt(se, 3, pct=True)} at our "
        "accuracy (about 1 point near 90%); latency and energy are modelled by our system model "
        "(DESIGN section 5, board profiles of a Raspberry Pi 4 and a Jetson Nano) and our link "
        "layer (5G NR MCS, BLER curves and HARQ, DESIGN section 12), which the paper does not "
        "specify; a round's energy is the sum over its clients of compute and uplink energy."
    )


def _ours_and_paper(r: Row) -> list[str]:
    """Accuracy, latency and energy, each ours (mean ± 95%) then the paper's."""
    return [
        _pm(r, "accuracy", pct=True),
        fmt(r["paper_accuracy"], pct=True),
        _pm(r, "model_latency_s"),
        fmt(r["paper_model_latency_s"], 2),
        _pm(r, "model_energy_j"),
        fmt(r["paper_model_energy_j"], 2),
    ]


def _section_comparison(rows: Sequence[Row], scale: Scale, why: str) -> str:
    body = []
    for r in rows:
        body.append(
            [
                paper.label(r["method"]),
                *_ours_and_paper(r),
                _pm(r, "fairness_var", digits=4),
                fmt(r["paper_fairness_var"]),
                _pm(r, "model_dropout_rate", pct=True),
                f"{fmt(r['rounds_to_target_mean'], 1)} ({r['target_reached_seeds']}/{r['seeds']})",
            ]
        )
    order = _rank(rows, "accuracy_mean")
    ours = next(r for r in rows if r["method"] == "proposed")
    place = order.index("proposed") + 1 if "proposed" in order else None
    fastest = _rank(rows, "model_latency_s_mean", high=False)
    text = (
        f"By mean final accuracy the order is {', '.join(paper.label(m) for m in order)}: the "
        f"proposed method is {'#' + str(place) if place else 'unranked'} of {len(rows)} here "
        f"(the paper has it first, at {fmt(paper.COMPARISON['proposed']['accuracy'], pct=True)}). "
        "By modelled round latency the fastest is "
        f"{paper.label(fastest[0]) if fastest else '-'}; the proposed method's is "
        f"{fmt(ours['model_latency_s_mean'], 2)} s against the paper's "
        f"{fmt(paper.COMPARISON['proposed']['latency_s'], 2)} s."
    )
    return "\n\n".join(
        [
            "## Figure 6: the comparison (CIFAR-10, Dirichlet alpha = 0.5)",
            "![Figure 6](fig6_comparison.png)",
            f"Mean ± 95% interval over {ours['seeds']} seeds. Accuracy and loss variance are "
            "measured (real training, the test set); latency, energy and dropouts are modelled. "
            f"Rounds to target: rounds until the test accuracy reached {scale.target_accuracy:.0%} "
            "(the paper's target is 90%), over the seeds that reached it (reached/seeds).",
            md_table(
                [
                    "method",
                    "accuracy",
                    "paper",
                    "latency s (model)",
                    "paper",
                    "energy J (model)",
                    "paper",
                    "loss variance",
                    "paper",
                    "link dropouts (model)",
                    "rounds to target",
                ],
                body,
            ),
            text,
            why,
        ]
    )


def _section_convergence(rows: Sequence[Row]) -> str:
    last: dict[str, Row] = {}
    for r in rows:
        last[r["method"]] = r
    body = [
        [
            paper.label(m),
            str(last[m]["round"]),
            fmt(last[m]["accuracy_mean"], pct=True),
            fmt(last[m]["model_time_s_mean"], 1),
        ]
        for m in METHODS
        if m in last
    ]
    return "\n\n".join(
        [
            "## Figure 7: convergence against rounds and against modelled time",
            "![Figure 7](fig7_convergence.png)",
            "The paper: the proposed method reaches 90% after about 115 rounds, FedAvg after "
            "170, JCC after about 150. Ours, at the last round (modelled time is the sum of the "
            "modelled round latencies):",
            md_table(["method", "round", "accuracy", "modelled time s"], body),
            "A method that plans shorter rounds moves left on the right-hand plot even where "
            "it learns no faster per round.",
        ]
    )


def _section_ttest(rows: Sequence[Row]) -> str:
    body = [
        [
            r["metric"],
            paper.label(r["baseline"]),
            str(r["n"]),
            fmt(r["mean_gain"], 4),
            fmt(r["t"], 2),
            fmt(r["p"], 4),
            fmt(r["significant_1pct"]),
            fmt(r["proposed_better"]),
            fmt(r["paper_t"], 2),
        ]
        for r in rows
    ]
    significant = [r["metric"] for r in rows if r["significant_1pct"]]
    pairs = int(rows[0]["n"]) if rows else 0
    return "\n\n".join(
        [
            "## Table 5: paired t-tests, proposed against the strongest baseline",
            "Two-sided paired t-tests (scipy.stats.ttest_rel) over the seeds, which every method "
            "shares, oriented as the paper's: a positive t and gain mean the proposed method is "
            "better (higher accuracy, lower latency or energy). The strongest baseline is the "
            "one with the highest mean final accuracy here (the paper's is JCC, and all its "
            "tests have p < 0.01).",
            md_table(
                [
                    "metric",
                    "baseline",
                    "pairs",
                    "mean gain of proposed",
                    "t",
                    "p",
                    "significant at 1%",
                    "proposed better",
                    "paper t",
                ],
                body,
            ),
            f"Significant at 1% here: {', '.join(significant) if significant else 'none'}. With "
            f"{pairs} pairs a t-test has {max(pairs - 1, 0)} degrees of freedom: a handful of "
            "seeds cannot show a small difference at 1%, whatever its sign.",
        ]
    )


def _section_bandwidth(rows: Sequence[Row]) -> str:
    pairs = [(r["model_bandwidth_hz"], r["gain_db"]) for r in rows if math.isfinite(r["gain_db"])]
    corr = math.nan
    if len(pairs) > 2:
        from scipy.stats import spearmanr

        corr = float(spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic)
    if corr < 0:
        trend = (
            "weaker channels get more bandwidth, as the paper says: our CRA minimises the "
            "round's latency, so a weak user gets the band that brings its upload in with the "
            "others'"
        )
    elif corr > 0:
        trend = "stronger channels get more bandwidth, unlike the paper"
    else:
        trend = "no trend"
    ues = len({r["ue"] for r in rows})
    n_rounds = len({r["round"] for r in rows})
    return "\n\n".join(
        [
            "## Figure 8: bandwidth per user and round",
            "![Figure 8](fig8_bandwidth.png)",
            f"The proposed method's planned bandwidth for {ues} users over {n_rounds} rounds "
            "(seed 0), beside the channel gain it planned with (estimated from the APs' CSI). "
            "The paper: users in deep fades get more bandwidth. Here the Spearman correlation "
            f"of bandwidth with gain (dB) over all users and rounds is {fmt(corr, 2)}: {trend}.",
        ]
    )


def _section_multitask(rows: Sequence[Row], sizes: dict[str, int]) -> str:
    final: dict[tuple[str, str], float] = {}
    for r in rows:
        final[(r["method"], r["task"])] = r["accuracy"]
    tasks = [t for t, *_ in TASKS]
    body = [
        [paper.label(m)] + [fmt(final.get((m, t), math.nan), pct=True) for t in tasks]
        for m in METHODS
    ]
    body.append(
        ["paper, proposed at round 150"]
        + [fmt(paper.MULTITASK_ROUND_150[t], pct=True) for t in tasks]
    )

    def top(task: str) -> str:
        return max(METHODS, key=lambda m: final.get((m, task), -math.inf))

    best = {t: top(t) for t in tasks}
    n_rounds = max((int(r["round"]) for r in rows), default=0)
    return "\n\n".join(
        [
            "## Figure 9: three tasks at once",
            "![Figure 9](fig9_multitask.png)",
            "Three federations on disjoint UE subsets "
            f"({', '.join(f'{t}: {sizes[t]} UEs' for t in tasks)}), run side by side over the "
            "same rounds (three runs of the round core): CIFAR-10 (Dirichlet 0.5), "
            "MNIST (label skew, 2 classes per client) and the wireless-trace task on the CRAWDAD "
            "rutgers/noise traces (the next 30-frame window's link state, outage or RSSI tercile, "
            "from the last four windows; split in time). They share the band in proportion to "
            "their UEs and each allocates within its share: the allocator does not trade "
            "bandwidth across tasks (our simplification; the paper does not say how its tasks "
            f"share). Test accuracy (measured) after our last round, {n_rounds}; the paper's "
            "row is at round 150:",
            md_table(["method", *tasks], body),
            "Most accurate per task: "
            + ", ".join(f"{t} {paper.label(best[t])}" for t in tasks)
            + ". The paper's claim is that the proposed method keeps every task high where "
            "FedAvg and FedProx let one lag.",
        ]
    )


def _sweep_table(rows: Sequence[Row], key: str, values: Sequence[float], column: str) -> str:
    lookup = {(r["method"], r[key]): r[column] for r in rows}
    body = [
        [paper.label(m)] + [fmt(lookup.get((m, v), math.nan), pct=True) for v in values]
        for m in METHODS
    ]
    return md_table(["method", *[f"{key} {v:g}" for v in values]], body)


def _section_snr(rows: Sequence[Row], scale: Scale) -> str:
    def over_methods(column: str, value: float) -> float:
        return finite_mean([r[column] for r in rows if r["snr_db"] == value])

    low, high = scale.snrs_db[0], scale.snrs_db[-1]
    drop_low, drop_high = (over_methods("model_dropout_rate_mean", v) for v in (low, high))
    lat_low, lat_high = (over_methods("model_latency_s_mean", v) for v in (low, high))
    if drop_low > drop_high:
        verdict = "the low SNR loses updates on the link"
    elif lat_low > lat_high:
        verdict = (
            "no more updates are lost at the low SNR, but the rounds take longer: our link "
            "adapts its MCS to the planned SINR, so the low SNR costs airtime"
        )
    else:
        verdict = "the SNR changes neither the dropouts nor the latency here"
    return "\n\n".join(
        [
            "## Figure 10: accuracy against SNR",
            "![Figure 10](fig10_snr.png)",
            "Every UE's pilot SNR is set (`radio.snr_override_db`), which sets the uplink's too: "
            "the CSI gets noisier and the link layer loses more blocks. Final test accuracy "
            f"(measured) over {scale.sweep_seeds} seed(s):",
            _sweep_table(rows, "snr_db", scale.snrs_db, "accuracy_mean"),
            f"The paper: {paper.SNR_TEXT}. Here, averaged over the methods, the modelled link "
            f"dropout rate is {fmt(drop_low, pct=True)} at {low:g} dB and "
            f"{fmt(drop_high, pct=True)} at {high:g} dB, and the modelled round latency "
            f"{fmt(lat_low, 2)} s and {fmt(lat_high, 2)} s: {verdict}.",
        ]
    )


def _section_alpha(rows: Sequence[Row], scale: Scale) -> str:
    last: dict[tuple[str, float], float] = {}
    for r in rows:
        last[(r["method"], r["alpha"])] = r["accuracy_mean"]
    final = [{"method": m, "alpha": a, "accuracy": v} for (m, a), v in last.items()]
    return "\n\n".join(
        [
            "## Figure 11: convergence under data heterogeneity",
            "![Figure 11](fig11_alpha.png)",
            f"Dirichlet alpha over the labels (smaller is more skewed); {scale.sweep_seeds} "
            "seed(s); alpha 0.5 is the comparison's runs. Final test accuracy (measured):",
            _sweep_table(final, "alpha", scale.alphas, "accuracy"),
            f"The paper: {paper.ALPHA_TEXT}.",
        ]
    )


def _section_ablation(rows: Sequence[Row]) -> str:
    body = [
        [
            paper.label(r["method"]),
            *_ours_and_paper(r),
            fmt(r["t_accuracy_vs_full"], 2),
            fmt(r["p_accuracy_vs_full"], 4),
        ]
        for r in rows
    ]
    full = rows[0]
    gaps = [paper.ABLATION["full"]["accuracy"] - paper.ABLATION[v]["accuracy"] for v in ABLATIONS]
    worse = [
        paper.label(r["method"])
        for r in rows[1:]
        if math.isfinite(r["accuracy_mean"]) and r["accuracy_mean"] < full["accuracy_mean"]
    ]
    return "\n\n".join(
        [
            "## Table 6: ablations",
            "![Table 6](fig_ablation.png)",
            "Each variant removes one module of the proposed method (`algorithm.ablation`): "
            "CRA (bandwidth and power allocation: an equal split at full power), CSM (the "
            "CPU-frequency schedule: every board at its highest frequency), FAL (the "
            "fairness-aware weights: FedAvg's sample-size weights), DRL (the learnt power "
            "policy: the convex power step alone). "
            "Paired t-test of each variant's accuracy against the full method's:",
            md_table(
                [
                    "variant",
                    "accuracy",
                    "paper",
                    "latency s (model)",
                    "paper",
                    "energy J (model)",
                    "paper",
                    "t (accuracy)",
                    "p",
                ],
                body,
            ),
            f"Less accurate than the full method here: {', '.join(worse) if worse else 'none'} "
            "(the paper: all four, by "
            f"{fmt(min(gaps), pct=True)} to {fmt(max(gaps), pct=True)}, each at p < 0.01).",
        ]
    )


def _section_efficiency(rows: Sequence[Row]) -> str:
    body = [
        [
            paper.label(r["method"]),
            _pm(r, "model_se_bit_s_hz", digits=2),
            fmt(r["paper_model_se_bit_s_hz"], 1),
            _pm(r, "model_ee_bit_j"),
            fmt(r["paper_model_ee_bit_j"]),
        ]
        for r in rows
    ]
    return "\n\n".join(
        [
            "## Uplink spectral and energy efficiency",
            "![Efficiency](fig_efficiency.png)",
            "Modelled, from the link layer's outcome of every update: SE = sum over the "
            "delivered updates of (update bits / airtime) over the band, bit/s/Hz, averaged over "
            "rounds; EE = bits delivered / uplink transmit energy of every update sent, bit/J "
            "(the paper names both without a formula; these are ours).",
            md_table(["method", "SE bit/s/Hz", "paper", "EE bit/J", "paper"], body),
            f"The paper's {paper.EFFICIENCY['se_bit_s_hz']:g} bit/s/Hz is a cell-free sum over "
            "many users with coherent combining; ours is capped by our MCS table (5.55 bit/s/Hz "
            "per user at 64-QAM, code rate 0.93) and by users sharing the band in frequency.",
        ]
    )


def _header(facts: ReportFacts, results: Sequence[Result]) -> str:
    s = facts.scale
    spec = results[0].cell.spec
    fl, topo = spec.fl, spec.topology
    profiles = sorted({ue.profile for ue in topo.ues})
    topology = (
        f"{len(topo.ues)} UEs ({', '.join(profiles)}), {len(topo.aps)} APs x "
        f"{topo.aps[0].antennas} antennas, {topo.area_m:g} m square"
    )
    training = (
        f"{fl.rounds} rounds, {fl.local_epochs} local epoch(s), {s.samples_per_client} samples "
        f"per client, batch {fl.batch_size}, SGD lr {fl.learning_rate:g} momentum {fl.momentum:g}"
    )
    runs = (
        f"{len(results)} ({facts.runs_made} run now, {facts.runs_reused} reused from this folder)"
    )
    return "\n\n".join(
        [
            "# Reproduction of seed paper 2 (joint CRA, CSM and FAL over CF-mMIMO)",
            f"`testbed reproduce s2 --scale {s.name} --seeds {s.seeds} --engine {facts.engine}` "
            f"(project version {facts.version}).",
            md_table(
                ["", ""],
                [
                    ["scale", s.name],
                    ["engine", facts.engine],
                    ["topology", topology],
                    ["training", training],
                    ["seeds", f"{s.seeds} (comparison, ablations), {s.sweep_seeds} (sweeps)"],
                    [
                        "secure aggregation",
                        "on" if s.secure else "off (the same sum; not what is compared)",
                    ],
                    ["runs", runs],
                    ["measured wall time", f"{facts.measured_wall_s:.0f} s"],
                ],
            ),
            "Every method gets the same topology, data partition, seeds, rounds and local "
            "training; only the algorithm changes. Nothing is tuned to match the paper. "
            "Measured quantities (test accuracy, the clients' loss variance) and modelled ones "
            "(`model_*`: latency, energy, dropouts, efficiencies, from the system model and the "
            "link layer) are kept apart. The tables are also in the CSV files beside this report."
            + (
                " **This is the smoke scale**: a few rounds on a few samples, to check that every "
                "study runs; its numbers say nothing about the methods."
                if s.name == "smoke"
                else ""
            ),
        ]
    )


def write_report(out: Path, results: Sequence[Result], scale: Scale, facts: ReportFacts) -> Path:
    """Write the tables, figures, ``report.md`` and ``report.html`` to ``out``; the .md path."""
    from edge_agent.models import build_model, num_parameters

    built = {
        "comparison": tables.comparison(results),
        "convergence": tables.convergence(results),
        "bandwidth": tables.bandwidth(results, scale),
        "multitask": tables.multitask(results),
        "snr": tables.snr(results, scale),
        "alpha": tables.alpha(results, scale),
        "ttest": tables.ttest(results),
        "ablation": tables.ablation(results),
        "efficiency": tables.efficiency(results),
        "runs": [
            {
                "method": r.cell.method,
                "study": r.cell.study,
                "setting": r.cell.setting,
                "seed": r.cell.seed,
                **asdict(r.measures),
            }
            for r in results
        ],
    }
    for name in CSV_FILES:
        write_csv(built[name], out / f"{name}.csv")
    figures.plot_comparison(built["comparison"], out / "fig6_comparison.png", scale.target_accuracy)
    figures.plot_convergence(built["convergence"], out / "fig7_convergence.png")
    figures.plot_bandwidth(built["bandwidth"], out / "fig8_bandwidth.png")
    figures.plot_multitask(built["multitask"], out / "fig9_multitask.png")
    figures.plot_snr(built["snr"], out / "fig10_snr.png")
    figures.plot_alpha(built["alpha"], out / "fig11_alpha.png", scale.alphas)
    figures.plot_ablation(built["ablation"], out / "fig_ablation.png")
    figures.plot_efficiency(built["efficiency"], out / "fig_efficiency.png")

    from edge_agent.data import load_raw

    n_test = int(load_raw("cifar10", "test")[1].shape[0])
    proposed = next(r for r in built["comparison"] if r["method"] == "proposed")
    why = _why(scale, num_parameters(build_model("cifar_cnn")), n_test, proposed["accuracy_mean"])
    sizes = {r.cell.setting: r.cell.spec.n_ues for r in results if r.cell.study == "multitask"}
    md = "\n\n".join(
        [
            _header(facts, results),
            _section_comparison(built["comparison"], scale, why),
            _section_convergence(built["convergence"]),
            _section_ttest(built["ttest"]),
            _section_bandwidth(built["bandwidth"]),
            _section_multitask(built["multitask"], {str(k): v for k, v in sizes.items()}),
            _section_snr(built["snr"], scale),
            _section_alpha(built["alpha"], scale),
            _section_ablation(built["ablation"]),
            _section_efficiency(built["efficiency"]),
        ]
    )
    (out / "report.md").write_text(md + "\n")
    write_html(md, out / "report.html", title="Reproduction of seed paper 2")
    return out / "report.md"


def write_html(md: str, path: Path, *, title: str) -> None:
    """The Markdown report ``md`` as a standalone HTML page (no external resources)."""
    import markdown

    body = markdown.markdown(md, extensions=["tables"])
    path.write_text(_HTML.format(body=body, title=title))


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 70em; margin: 2em auto; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head>
<body>
{body}
</body></html>
"""
assert set(ABLATIONS) <= set(paper.ABLATION)
