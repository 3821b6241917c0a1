"""`testbed reproduce s1`: seed paper 1's comparisons (FERMI-6G cross-layer Fed-MARL agents).

The paper (../shared/seeds/000_f86ab052a9c5f79e.txt) reports the task success rate, the energy
efficiency (bits/J), fairness and latency of its federated DRQN agents against baselines, and
the reliability and communication overhead from 5 to 50 agents. We run every policy of
:mod:`fedmarl.policies` in the environment of :mod:`fedmarl.env` at each agent count
(:func:`testbed.fedmarl_bench.run_fedmarl_bench`) and write ``report.md`` / ``report.html``,
the CSV tables and the figures. Everything it reports is modelled by the environment except
``s_per_episode`` and the federation's bytes, which are measured.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproduce.report import fmt, md_table, write_csv, write_html

__all__ = ["PAPER", "S1_SCALES", "S1Scale", "reproduce_s1"]

#: The paper's headline numbers (its abstract and results section).
PAPER = {
    "success_rate": 0.9683,
    "centralised_success_rate": 0.8978,
    "bits_per_joule": 68.72,
    "dqn_bits_per_joule": 19.55,
    "reliability": 0.90,
}


@dataclass(frozen=True)
class S1Scale:
    """The budget: agent counts, training episodes, slots per episode, evaluation episodes."""

    name: str
    agents: tuple[int, ...]
    episodes: int
    slots: int
    eval_episodes: int


S1_SCALES = {
    "smoke": S1Scale("smoke", agents=(5, 10), episodes=4, slots=50, eval_episodes=1),
    "medium": S1Scale("medium", agents=(5, 10, 20), episodes=20, slots=200, eval_episodes=3),
    "full": S1Scale("full", agents=(5, 10, 20, 50), episodes=100, slots=200, eval_episodes=5),
}


def _plots(rows: Sequence[dict[str, Any]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fedmarl.policies import METHODS
    from reproduce.figures import method_lines

    names = []
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    panels = [
        ("success_rate", "task success rate"),
        ("bits_per_joule", "bits per joule"),
        ("jain", "Jain's fairness index"),
        ("reliability", "URLLC reliability"),
    ]
    for ax, (key, title) in zip(axes, panels, strict=True):
        method_lines(ax, rows, "agents", key, methods=METHODS, marker="o")
        ax.set_xlabel("agents")
        ax.set_title(f"{title} (modelled)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fig_agents.png", dpi=110)
    plt.close(fig)
    names.append("fig_agents.png")
    most = max(r["agents"] for r in rows)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in rows:
        if r["agents"] == most and len(r["returns"]) > 1:
            ax.plot(range(1, len(r["returns"]) + 1), r["returns"], label=r["method"])
    ax.set_xlabel("training episode")
    ax.set_ylabel("episode return, all agents (modelled reward)")
    ax.set_title(f"reward curves, {most} agents", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fig_rewards.png", dpi=110)
    plt.close(fig)
    names.append("fig_rewards.png")
    return names


_UNITS = (
    "Our bits/J are orders of magnitude above the paper's because our tasks are kilobits "
    "computed at nanojoules per cycle; the paper gives neither its task sizes nor its energy "
    "model."
)


def _markdown(
    scale: S1Scale, rows: Sequence[dict[str, Any]], overhead: Sequence[dict[str, Any]], wall: float
) -> str:
    from fedmarl.policies import METHODS

    most = max(scale.agents)
    at_most = {r["method"]: r for r in rows if r["agents"] == most}
    body = [
        [
            m,
            fmt(at_most[m]["success_rate"], pct=True),
            fmt(at_most[m]["bits_per_joule"]),
            fmt(at_most[m]["jain"]),
            fmt(at_most[m]["mean_latency_slots"]),
            fmt(at_most[m]["reliability"], pct=True),
            fmt(at_most[m]["s_per_episode"]),
        ]
        for m in METHODS
    ]
    table = md_table(
        [
            "method",
            "success",
            "bits/J",
            "Jain",
            "latency slots",
            "reliability",
            "s/episode (measured)",
        ],
        body,
    )
    rel = {r["agents"]: r["reliability"] for r in rows if r["method"] == "fedmarl"}
    over = md_table(
        ["agents", "parameters", "secure bytes per agent per round", "plain bytes", "ratio"],
        [
            [
                str(o["agents"]),
                str(o["parameters"]),
                f"{o['secure_bytes_per_agent']:.0f}",
                f"{o['plain_bytes_per_agent']:.0f}",
                f"{o['ratio']:.2f}",
            ]
            for o in overhead
        ],
    )
    best = max(METHODS, key=lambda m: at_most[m]["success_rate"])
    paper_line = (
        f"The paper: {PAPER['success_rate']:.2%} task success and {PAPER['bits_per_joule']} "
        f"bits/J for its agents against {PAPER['dqn_bits_per_joule']} for DQN, and "
        f"{PAPER['centralised_success_rate']:.2%} success for centralised MARL."
    )
    return "\n\n".join(
        [
            "# Reproduction of seed paper 1 (FERMI-6G: cross-layer Fed-MARL edge agents)",
            f"`testbed reproduce s1 --scale {scale.name}`: agents {list(scale.agents)}, "
            f"{scale.episodes} training episodes of {scale.slots} slots (1 ms) per learner, "
            f"{scale.eval_episodes} greedy evaluation episode(s) on held-out seeds; "
            f"{wall:.0f} s measured wall time. All metrics are modelled by our environment "
            "(fedmarl/env.py: its task classes, DVFS, sub-band contention and CF-mMIMO uplink "
            "are our assumptions, named with their sources in its docstring); the seconds per "
            "episode and the federation's bytes are measured."
            + (
                " **Smoke scale**: too few episodes to learn; it checks that everything runs."
                if scale.name == "smoke"
                else ""
            ),
            f"## The comparison at {most} agents",
            "![agents](fig_agents.png)",
            table,
            paper_line + f" Here the most successful method at {most} agents is {best}. " + _UNITS,
            "## Reliability and overhead from few to many agents",
            "Federated DRQN's URLLC reliability by agent count: "
            + ", ".join(f"{n}: {fmt(v, pct=True)}" for n, v in sorted(rel.items()))
            + f" (the paper keeps {PAPER['reliability']:.0%} from 5 to 50 agents, with fairness "
            "falling).",
            "Communication cost of one federation round (measured): the SecAgg+ protocol's bytes "
            "per agent (keys, shares, the masked network, unmasking) plus the averaged network "
            "sent back, against sending the float32 network in the clear both ways:",
            over,
            "## Reward curves",
            "![rewards](fig_rewards.png)",
        ]
    )


def reproduce_s1(out: Path, *, scale: str = "smoke", progress: bool = True) -> Path:
    """Run seed paper 1's comparisons at ``scale`` and write the report to ``out``; its path.

    Raises:
        ValueError: an unknown ``scale`` (named).
    """
    from testbed.fedmarl_bench import run_fedmarl_bench

    if scale not in S1_SCALES:
        raise ValueError(f"`scale` must be one of {sorted(S1_SCALES)}, got {scale!r}")
    s = S1_SCALES[scale]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    bench = run_fedmarl_bench(
        s.agents,
        episodes=s.episodes,
        slots=s.slots,
        eval_episodes=s.eval_episodes,
        returns=True,
        progress=progress,
    )
    rows = bench["rows"]
    overhead = []
    for r in rows:
        if r["method"] == "fedmarl" and "federation_bytes_per_agent" in r:
            plain = 2 * 4 * r["parameters"]  # float32 network up, the average down
            secure = r["federation_bytes_per_agent"] + 4 * r["parameters"]  # + the average
            overhead.append(
                {
                    "method": "fedmarl",
                    "agents": r["agents"],
                    "parameters": r["parameters"],
                    "secure_bytes_per_agent": secure,
                    "plain_bytes_per_agent": plain,
                    "ratio": secure / plain,
                }
            )
    curves = [
        {"method": r["method"], "agents": r["agents"], "episode": i + 1, "return": v}
        for r in rows
        for i, v in enumerate(r["returns"])
    ]
    table = [{k: v for k, v in r.items() if k != "returns"} for r in rows]
    write_csv(table, out / "comparison.csv")
    write_csv(curves, out / "curves.csv")
    write_csv(overhead, out / "overhead.csv")
    _plots(rows, out)
    md = _markdown(s, rows, overhead, time.perf_counter() - started)
    (out / "report.md").write_text(md + "\n")
    write_html(md, out / "report.html", title="Reproduction of seed paper 1")
    return out / "report.md"
