"""An experiment's results on disk: metrics.csv, summary.json and the plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["METRIC_COLUMNS", "write_metrics", "write_plots", "write_summary"]

METRIC_COLUMNS = (
    "round",
    "accuracy",
    "loss",
    "latency_s",
    "energy_j",
    "fairness_var",
    "dropouts",
    "overhead_s",
)


def write_metrics(rounds: list[dict[str, Any]], path: Path) -> Path:
    """One row per round, in ``METRIC_COLUMNS`` order (``round`` is the round index)."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(METRIC_COLUMNS)
        for r in rounds:
            writer.writerow([r["index"], *(r.get(c) for c in METRIC_COLUMNS[1:])])
    return path


def write_summary(summary: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path


def _series(rounds: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else r[key] for r in rounds], dtype=float)


def write_plots(rounds: list[dict[str, Any]], ue_ids: list[str], out: Path) -> list[Path]:
    """Accuracy, latency, energy and fairness per round; a heatmap of bandwidth per user."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rounds:
        return []
    x = np.array([r["index"] for r in rounds])
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    panels = (
        ("accuracy", "test accuracy"),
        ("latency_s", "round latency (s)"),
        ("energy_j", "energy (J)"),
        ("fairness_var", "fairness variance"),
    )
    for ax, (key, label) in zip(axes.flat, panels, strict=True):
        ax.plot(x, _series(rounds, key), marker="o")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("round")
    fig.tight_layout()
    metrics_png = out / "metrics.png"
    fig.savefig(metrics_png, dpi=120)
    plt.close(fig)

    grid = np.full((len(ue_ids), len(rounds)), np.nan)
    for j, r in enumerate(rounds):
        alloc = r.get("allocation") or {}
        for ue, bw in zip(alloc.get("ue_ids", []), alloc.get("bandwidth_hz", []), strict=False):
            if ue in ue_ids:
                grid[ue_ids.index(ue), j] = bw / 1e6
    fig, ax = plt.subplots(figsize=(max(6, len(rounds) * 0.4), 1 + 0.4 * len(ue_ids)))
    image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(ue_ids)), ue_ids)
    ax.set_xticks(range(len(rounds)), [str(i) for i in x])
    ax.set_xlabel("round")
    ax.set_title("bandwidth per user (MHz)")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    heat_png = out / "bandwidth_heatmap.png"
    fig.savefig(heat_png, dpi=120)
    plt.close(fig)
    return [metrics_png, heat_png]
