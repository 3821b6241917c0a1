"""An experiment's results on disk: metrics.csv, summary.json and the plots.

Every number says where it comes from: ``model_*`` columns are modelled (system model and link
layer of DESIGN sections 5 and 12), ``measured_*``, ``wall_s`` and ``overhead_s`` are measured
(wall clock, energy meters). Plots label each axis the same way and never mix the two.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ACCURACY_LABELS",
    "METRIC_COLUMNS",
    "mode_summary",
    "summarise",
    "write_metrics",
    "write_plots",
    "write_summary",
]

#: metrics.csv, one row per round (``round`` is the round index).
METRIC_COLUMNS = (
    "round",
    "accuracy",
    "loss",
    "fairness_var",
    "overhead_s",
    "model_latency_s",
    "model_energy_j",
    "model_time_s",
    "measured_train_s",
    "measured_energy_j",
    "wall_s",
    "link_dropouts",
    "crash_dropouts",
    "mean_mcs_index",
    "updated",
    "reward",
)


def write_metrics(rounds: list[dict[str, Any]], path: Path) -> Path:
    """One row per round, in ``METRIC_COLUMNS`` order; empty cells where a value is None."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(METRIC_COLUMNS)
        for r in rounds:
            cells = [r.get(c) for c in METRIC_COLUMNS[1:]]
            writer.writerow([r["index"], *("" if c is None else c for c in cells)])
    return path


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's totals, each named modelled or measured (``summary.json``)."""
    if not rounds:
        return {"rounds_completed": 0}
    acc = [r["accuracy"] for r in rounds if r.get("accuracy") is not None]

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rounds]))

    return {
        "rounds_completed": len(rounds),
        "rounds_without_update": sum(1 for r in rounds if not r.get("updated", True)),
        "final_accuracy": acc[-1] if acc else None,
        "best_accuracy": max(acc) if acc else None,
        "model_time_s": rounds[-1]["model_time_s"],
        "model_energy_j": float(sum(r["model_energy_j"] for r in rounds)),
        "mean_model_latency_s": mean("model_latency_s"),
        "link_dropouts": int(sum(r["link_dropouts"] for r in rounds)),
        "crash_dropouts": int(sum(r["crash_dropouts"] for r in rounds)),
        "mean_measured_round_wall_s": mean("wall_s"),
        "mean_measured_overhead_s": mean("overhead_s"),
        "policy_reward_per_round": [r.get("reward") for r in rounds],
    }


def mode_summary(mode: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """What the summary says of the experiment's mode: the mode, what its ``accuracy`` is, and
    in ``mode: fedmarl`` the last evaluation's environment metrics (modelled)."""
    out: dict[str, Any] = {"mode": mode, "accuracy_is": ACCURACY_LABELS[mode]}
    if mode == "fedmarl":
        evaluated = [r for r in rounds if (r.get("details") or {}).get("model_fedmarl")]
        out["model_fedmarl"] = evaluated[-1]["details"]["model_fedmarl"] if evaluated else None
    return out


def write_summary(summary: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path


def _series(rounds: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else r[key] for r in rounds], dtype=float)


#: (column, axis label) of the per-round panels of metrics.png.
_PANELS = (
    ("accuracy", "test accuracy"),
    ("fairness_var", "fairness variance"),
    ("model_latency_s", "round latency, s (modelled)"),
    ("model_energy_j", "energy, J (modelled)"),
    ("link_dropouts", "link dropouts (modelled)"),
    ("wall_s", "round wall time, s (measured)"),
)


#: The ``accuracy`` column's meaning per spec ``mode``.
ACCURACY_LABELS = {
    "fl": "test accuracy",
    "fedmarl": "task success rate (modelled, Fed-MARL environment)",
}


def write_plots(
    rounds: list[dict[str, Any]], ue_ids: list[str], out: Path, *, mode: str = "fl"
) -> list[Path]:
    """metrics.png (per-round panels, accuracy against rounds and against modelled time), the
    power policy's reward per round, and heatmaps of bandwidth and link outcome per UE;
    ``mode``: the spec's, which says what the ``accuracy`` column is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rounds:
        return []
    x = np.array([r["index"] for r in rounds])
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    accuracy_label = ACCURACY_LABELS[mode]
    for ax, (key, label) in zip(axes.flat, _PANELS, strict=False):
        label = accuracy_label if key == "accuracy" else label
        ax.plot(x, _series(rounds, key), marker="o")
        ax.set_ylabel(label)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    ax = axes.flat[6]
    ax.plot(_series(rounds, "model_time_s"), _series(rounds, "accuracy"), marker="o")
    ax.set_xlabel("experiment time, s (modelled)")
    ax.set_ylabel(accuracy_label)
    ax.grid(alpha=0.3)
    ax = axes.flat[7]
    ax.plot(x, _series(rounds, "reward"), marker="o", color="tab:purple")
    ax.set_xlabel("round")
    ax.set_ylabel("power-policy reward R_t (from modelled E, T)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    metrics_png = out / "metrics.png"
    fig.savefig(metrics_png, dpi=110)
    plt.close(fig)
    return [metrics_png, _heatmaps(rounds, ue_ids, x, out)]


#: UEs the heatmaps show at most (the first ones, in topology order).
HEATMAP_MAX_UES = 64


def _heatmaps(rounds: list[dict[str, Any]], ue_ids: list[str], x: np.ndarray, out: Path) -> Path:
    import matplotlib.pyplot as plt

    shown = ue_ids[:HEATMAP_MAX_UES]
    row = {u: i for i, u in enumerate(shown)}
    bandwidth = np.full((len(shown), len(rounds)), np.nan)
    outcome = np.full((len(shown), len(rounds)), np.nan)
    codes = {"arrived": 0, "late": 1, "failed": 2, "outage": 3}
    for j, r in enumerate(rounds):
        alloc = r.get("allocation") or {}
        for ue, bw in zip(alloc.get("ue_ids", []), alloc.get("bandwidth_hz", []), strict=False):
            if ue in row:
                bandwidth[row[ue], j] = bw / 1e6
        link = (r.get("details") or {}).get("link") or {}
        for ue, st in zip(link.get("ue_ids", []), link.get("status", []), strict=False):
            if ue in row:
                outcome[row[ue], j] = codes.get(st, np.nan)
    note = f" (first {len(shown)} of {len(ue_ids)} UEs)" if len(shown) < len(ue_ids) else ""
    height = 2 + 0.8 * len(shown)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(max(10, len(rounds) * 0.8), height))
    im = a1.imshow(bandwidth, aspect="auto", cmap="viridis", interpolation="nearest")
    a1.set_title(f"planned bandwidth per UE, MHz{note}")
    fig.colorbar(im, ax=a1)
    im2 = a2.imshow(
        outcome, aspect="auto", cmap="RdYlGn_r", vmin=0, vmax=3, interpolation="nearest"
    )
    a2.set_title("link outcome (modelled): 0 arrived, 1 late, 2 failed, 3 outage")
    fig.colorbar(im2, ax=a2, ticks=[0, 1, 2, 3])
    for ax in (a1, a2):
        ax.set_yticks(range(len(shown)), shown)
        ax.set_xticks(range(len(rounds)), [str(i) for i in x])
        ax.set_xlabel("round")
    fig.tight_layout()
    path = out / "bandwidth_heatmap.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
