"""A small experiment for the simulator's tests."""

from __future__ import annotations

from typing import Any

from protocol.spec import ExperimentSpec, parse_spec


def small_spec(*, secure: bool = False, rounds: int = 2, **changes: Any) -> ExperimentSpec:
    """Four UEs on two APs, 300 MNIST samples each, the proposed algorithm, link layer on."""
    data: dict[str, Any] = {
        "name": "sim-small",
        "seed": 11,
        "topology": {
            "area_m": 400,
            "aps": [{"id": "ap0", "antennas": 2}, {"id": "ap1", "antennas": 2}],
            "ues": [{"id": f"ue{i}", "profile": ("rpi4", "jetson-nano")[i % 2]} for i in range(4)],
        },
        "radio": {"bandwidth_hz": 20.0e6, "sample_rate_hz": 1.0e6, "tau_p": 8, "tau_c": 200},
        "dataset": {
            "name": "mnist",
            "partition": {"kind": "dirichlet", "alpha": 1.0},
            "samples_per_client": 300,
        },
        "fl": {"rounds": rounds, "batch_size": 32, "learning_rate": 0.05, "momentum": 0.5},
        "algorithm": {"name": "proposed"},
        "secure_aggregation": {"enabled": secure},
        "engine": {"kind": "sim"},
    }
    data.update(changes)
    return parse_spec(data, source="test")
