"""The report's figures, drawn from its tables (PNG, matplotlib's Agg backend).

Every axis says whether its quantity is modelled (system model, link layer) or measured (test
accuracy, the clients' loss variance); the two never share an axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reproduce.paper import label
from reproduce.plan import METHODS, TASKS
from reproduce.tables import Row

__all__ = [
    "method_lines",
    "plot_ablation",
    "plot_alpha",
    "plot_bandwidth",
    "plot_comparison",
    "plot_convergence",
    "plot_efficiency",
    "plot_multitask",
    "plot_snr",
]

_DPI = 110


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    _plt().close(fig)
    return path


def method_lines(
    ax: Any,
    rows: Sequence[Row],
    x: str,
    y: str,
    *,
    methods: Sequence[str] = METHODS,
    marker: str = ".",
    **where: Any,
) -> None:
    """One line per method of ``y`` against ``x`` over the rows that match ``where``."""
    for method in methods:
        mine = [
            r for r in rows if r["method"] == method and all(r[k] == v for k, v in where.items())
        ]
        ax.plot([r[x] for r in mine], [r[y] for r in mine], marker=marker, label=label(method))


def _bars(ax: Any, rows: Sequence[Row], column: str, title: str) -> None:
    names = [label(r["method"]) for r in rows]
    means = [r[f"{column}_mean"] for r in rows]
    errs = [0.0 if not math.isfinite(r[f"{column}_ci95"]) else r[f"{column}_ci95"] for r in rows]
    colours = ["tab:red" if r["method"] in ("proposed", "full") else "tab:blue" for r in rows]
    ax.bar(names, means, yerr=errs, color=colours, capsize=3)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)


def plot_comparison(rows: Sequence[Row], path: Path, target: float) -> Path:
    """Figure 6: bars of every metric per method, with 95% intervals over seeds."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    panels = [
        ("accuracy", "test accuracy (measured)"),
        ("model_latency_s", "round latency, s (modelled)"),
        ("model_energy_j", "energy per round, J (modelled)"),
        ("fairness_var", "loss variance across clients (measured)"),
        ("model_dropout_rate", "link dropout rate (modelled)"),
        ("rounds_to_target", f"rounds to {target:.0%} accuracy (measured)"),
    ]
    for ax, (column, title) in zip(axes.flat, panels, strict=True):
        _bars(ax, rows, column, title)
    fig.suptitle("Figure 6: CIFAR-10, Dirichlet alpha = 0.5 (mean and 95% interval over seeds)")
    return _save(fig, path)


def plot_convergence(rows: Sequence[Row], path: Path) -> Path:
    """Figure 7: accuracy against rounds and against modelled time."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    method_lines(left, rows, "round", "accuracy_mean")
    method_lines(right, rows, "model_time_s_mean", "accuracy_mean")
    left.set_xlabel("round")
    right.set_xlabel("modelled time, s")
    for ax in (left, right):
        ax.set_ylabel("test accuracy (measured)")
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.suptitle("Figure 7: convergence (mean over seeds)")
    return _save(fig, path)


def plot_bandwidth(rows: Sequence[Row], path: Path) -> Path:
    """Figure 8: the heatmap of bandwidth per UE and round, beside the estimated gains."""
    plt = _plt()
    ues = list(dict.fromkeys(r["ue"] for r in rows))
    rounds = sorted({r["round"] for r in rows})
    band = np.full((len(ues), len(rounds)), np.nan)
    gain = np.full_like(band, np.nan)
    for r in rows:
        i, j = ues.index(r["ue"]), rounds.index(r["round"])
        band[i, j], gain[i, j] = r["model_bandwidth_hz"] / 1e6, r["gain_db"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.25 * len(ues) + 2.5))
    for ax, data, title, cmap in (
        (left, band, "bandwidth, MHz (modelled plan)", "viridis"),
        (right, gain, "estimated channel gain G^, dB (from CSI)", "magma"),
    ):
        im = ax.imshow(data, aspect="auto", cmap=cmap, interpolation="nearest")
        ax.set_yticks(range(len(ues)), ues, fontsize=6)
        ax.set_xticks(range(len(rounds)), [str(x) for x in rounds], fontsize=6)
        ax.set_xlabel("round")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax)
    fig.suptitle("Figure 8: the proposed method's bandwidth per user and round (seed 0)")
    return _save(fig, path)


def plot_multitask(rows: Sequence[Row], path: Path) -> Path:
    """Figure 9: each task's accuracy against rounds, per method."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(TASKS), figsize=(12, 3.8))
    for ax, (task, *_) in zip(axes, TASKS, strict=True):
        method_lines(ax, rows, "round", "accuracy", task=task)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("round")
        ax.set_ylabel("test accuracy (measured)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Figure 9: three tasks at once on disjoint UE subsets")
    return _save(fig, path)


def plot_snr(rows: Sequence[Row], path: Path) -> Path:
    """Figure 10: final accuracy against the pilot SNR, per method."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    method_lines(ax, rows, "snr_db", "accuracy_mean")
    ax.set_xlabel("pilot SNR, dB (every UE; radio.snr_override_db)")
    ax.set_ylabel("final test accuracy (measured)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Figure 10: accuracy against SNR", fontsize=10)
    return _save(fig, path)


def plot_alpha(rows: Sequence[Row], path: Path, alphas: Sequence[float]) -> Path:
    """Figure 11: convergence for each Dirichlet alpha."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(alphas), figsize=(3.2 * len(alphas), 3.6), squeeze=False)
    for ax, value in zip(axes[0], alphas, strict=True):
        method_lines(ax, rows, "round", "accuracy_mean", alpha=value)
        ax.set_title(f"alpha = {value:g}", fontsize=9)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (measured)")
    axes[0][0].legend(fontsize=6)
    fig.suptitle("Figure 11: convergence under data heterogeneity")
    return _save(fig, path)


def plot_ablation(rows: Sequence[Row], path: Path) -> Path:
    """Table 6 as bars: accuracy, latency and energy of each variant."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    panels = [
        ("accuracy", "test accuracy (measured)"),
        ("model_latency_s", "round latency, s (modelled)"),
        ("model_energy_j", "energy per round, J (modelled)"),
    ]
    for ax, (column, title) in zip(axes, panels, strict=True):
        _bars(ax, rows, column, title)
    fig.suptitle("Table 6: ablations of the proposed method")
    return _save(fig, path)


def plot_efficiency(rows: Sequence[Row], path: Path) -> Path:
    """Section 4.3: uplink spectral and energy efficiency per method."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    _bars(axes[0], rows, "model_se_bit_s_hz", "uplink spectral efficiency, bit/s/Hz (modelled)")
    _bars(axes[1], rows, "model_ee_bit_j", "uplink energy efficiency, bit/J (modelled)")
    fig.suptitle("Uplink efficiency (mean and 95% interval over seeds)")
    return _save(fig, path)
