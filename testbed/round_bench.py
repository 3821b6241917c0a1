"""`testbed bench round`: where a networked round's wall time goes (measured).

Runs a real experiment on this machine with :func:`testbed.launcher.run_experiment`: the AP
cluster (GNU Radio on the simulated source), the controller and ``agents`` agent processes
training MNIST, secure aggregation on by default. Each committed round records its wall time,
its slowest contributor's training time and how long each stage lasted (``details.stage_s``);
this module turns them into one JSON object:

- ``mean_round_wall_s``: the rounds' mean wall time, s;
- ``mean_train_s``: the mean of each round's slowest training, s;
- ``overhead_fraction``: the mean of ``(wall - slowest training) / wall`` over the rounds;
- ``stages_s``: each stage's mean duration, s (``train`` includes the training itself);
- the same figures without the first round (``steady_*``), whose model set-up and data loading
  are one-off.

Every figure is measured (wall clock); none is modelled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from protocol.spec import ExperimentSpec, parse_spec
from testbed.launcher import run_experiment

__all__ = ["round_figures", "round_spec", "run_round_bench"]


def round_spec(agents: int = 6, rounds: int = 5, secure: bool = True) -> ExperimentSpec:
    """The quickstart's set-up with ``agents`` UEs (rpi4 and jetson-nano alternating)."""
    profiles = ("rpi4", "jetson-nano")
    return parse_spec(
        {
            "name": f"bench-round-{agents}",
            "seed": 7,
            "topology": {
                "area_m": 500,
                "aps": [{"id": "ap0", "antennas": 2}, {"id": "ap1", "antennas": 2}],
                "ues": [{"id": f"ue{i}", "profile": profiles[i % 2]} for i in range(agents)],
            },
            "dataset": {
                "name": "mnist",
                "partition": {"kind": "dirichlet", "alpha": 1.0},
                "samples_per_client": min(2000, 60000 // agents),
            },
            "fl": {"rounds": rounds, "batch_size": 32, "learning_rate": 0.05, "momentum": 0.5},
            "secure_aggregation": {"enabled": secure},
        },
        source="bench round",
    )


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 3) if values else None


def round_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of the module docstring from committed round records."""
    walls = [float(r["wall_s"]) for r in rounds]
    trains = [float(r["measured_train_s"]) for r in rounds]
    fractions = [(w - t) / w for w, t in zip(walls, trains, strict=True) if w > 0]
    stages: dict[str, list[float]] = {}
    for r in rounds:
        for stage, seconds in ((r.get("details") or {}).get("stage_s") or {}).items():
            stages.setdefault(stage, []).append(float(seconds))
    return {
        "mean_round_wall_s": _mean(walls),
        "mean_train_s": _mean(trains),
        "overhead_fraction": _mean(fractions),
        "stages_s": {k: _mean(v) for k, v in stages.items()},
    }


def run_round_bench(out: Path, agents: int, rounds: int, secure: bool = True) -> dict[str, Any]:
    """Run the experiment into ``out``; the JSON-ready figures."""
    spec = round_spec(agents, rounds, secure)
    summary = run_experiment(spec, out)
    records: list[dict[str, Any]] = json.loads((out / "rounds.json").read_text())
    steady = round_figures(records[1:])
    return {
        "agents": agents,
        "rounds": len(records),
        "secure_aggregation": secure,
        **round_figures(records),
        **{f"steady_{k}": v for k, v in steady.items()},
        "figures": "measured (wall clock); none is modelled",
        "final_accuracy": summary.get("final_accuracy"),
        "measured_wall_time_s": summary.get("measured_wall_time_s"),
        "out": str(out),
    }
