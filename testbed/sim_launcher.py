"""`testbed run SPEC --engine sim`: the in-process simulator, with the networked run's outputs.

It writes what :func:`testbed.launcher.run_experiment` writes (``spec.json``, ``metrics.csv``
with the same columns, ``rounds.json``, ``summary.json``, the plots) from the simulator's
rounds, with a progress bar, and adds to the summary how the run was made: the engine, its
backend and workers, the channel (exact or sampled world) and the aggregation (secure, or
plain and why).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from protocol.spec import ExperimentSpec
from testbed.results import mode_summary, summarise, write_metrics, write_plots, write_summary

__all__ = ["run_simulation"]


def run_simulation(
    spec: ExperimentSpec,
    out: Path,
    *,
    backend: str | None = None,
    address: str | None = None,
    replay: Sequence[dict[str, Any]] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``spec`` with the simulator; write results to ``out``; the summary."""
    from tqdm import tqdm

    from simulator import aggregation_note, simulate

    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.json").write_text(spec.model_dump_json(indent=2, by_alias=True))
    experiment_id = f"{spec.name}-{secrets.token_hex(4)}"
    started = time.time()
    with tqdm(total=spec.fl.rounds, desc="rounds (sim)", unit="round", disable=not progress) as bar:

        def on_round(row: dict[str, Any]) -> None:
            acc = row.get("accuracy")
            bar.set_postfix(
                acc=f"{acc:.4f}" if acc is not None else "-",
                T_model=f"{row['model_latency_s']:.2f}s",
                link_drop=row["link_dropouts"],
            )
            bar.update(1)

        result = simulate(
            spec,
            experiment_id=experiment_id,
            backend=backend,
            address=address,
            replay=replay,
            on_round=on_round,
        )
    wall = time.time() - started
    rounds = result.rounds
    write_metrics(rounds, out / "metrics.csv")
    (out / "rounds.json").write_text(json.dumps(rounds, indent=1))
    plots = write_plots(rounds, [ue.id for ue in spec.topology.ues], out, mode=spec.mode)
    policy = result.policy
    if policy.policy is not None:
        policy.save_policy(out / "policy.pt")
    summary = {
        "experiment_id": experiment_id,
        "status": "completed",
        "error": None,
        "algorithm": spec.algorithm.name,
        **mode_summary(spec.mode, rounds),
        **summarise(rounds),
        "measured_wall_time_s": round(wall, 1),
        "secure_aggregation": result.secure,
        "aggregation": aggregation_note(spec),
        "link_layer": spec.link.enabled,
        "engine": "sim",
        "backend": result.backend,
        "workers": result.workers,
        "channel": "replayed CSI, exact world" if replay is not None else result.channel,
        "plots": [p.name for p in plots],
    }
    write_summary(summary, out / "summary.json")
    return summary
