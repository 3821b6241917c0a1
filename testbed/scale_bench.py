"""`testbed bench scale`: the in-process simulator at N UEs per round (measured).

The workload of issue 14's targets: MNIST and its CNN, one local epoch, the 60,000 training
samples split evenly (iid) over the N UEs, every UE selected every round, the link layer on
(the sampled world above 256 UEs), plain aggregation (secure aggregation at this size is
``testbed bench secagg``'s business). Four 2-antenna APs cover a 1 km square.

The JSON object holds, all measured on this machine:

- ``s_per_round``: mean wall time of a round (the first included), s; ``setup_s``: building
  the world, partitioning and loading the data, starting the backend;
- ``split_s``: mean seconds per round in each phase (plan: select, CSI, CRA/CSM; score: the
  clients' reports; link; train; aggregate; evaluate: the test set);
- ``train_samples_per_s``: samples trained per second of the train phase;
- ``peak_rss_mb``: the peak resident memory of this process and its children (Ray's
  included), sampled every 100 ms; ``rss_mb_per_1000_ues``: the peak above the memory before
  the simulator was built, per 1000 UEs;
- with ``--vs flower``: the same workload as FedAvg without resource allocation or link layer,
  run by the simulator (``sim_fedavg_s_per_round``) and by Flower's simulation engine on Ray
  (``flower_s_per_round``, :mod:`testbed.flower_bench`), and ``speedup`` = Flower's time over
  ours, both measured in this run.

Modelled figures (latency, dropouts) come from the link layer and are named ``model_*``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np

from protocol.spec import ExperimentSpec, parse_spec

__all__ = ["RSSMonitor", "run_scale_bench", "scale_spec"]


def scale_spec(
    ues: int,
    *,
    rounds: int = 3,
    seed: int = 1,
    algorithm: str = "proposed",
    link: bool = True,
    backend: str = "local",
    address: str | None = None,
) -> ExperimentSpec:
    """The benchmark's experiment with ``ues`` UEs (rpi4 and jetson-nano alternating)."""
    profiles = ("jetson-nano", "rpi4")
    return parse_spec(
        {
            "name": f"bench-scale-{ues}",
            "seed": seed,
            "topology": {
                "area_m": 1000,
                "aps": [{"id": f"ap{i}", "antennas": 2} for i in range(4)],
                "ues": [{"id": f"ue{i:05d}", "profile": profiles[i % 2]} for i in range(ues)],
            },
            "dataset": {
                "name": "mnist",
                "samples_per_client": 60000 // ues,
                "min_samples_per_client": 1,
            },
            "fl": {"rounds": rounds, "batch_size": 32, "learning_rate": 0.05},
            "algorithm": {"name": algorithm},
            "link": {"enabled": link},
            "secure_aggregation": {"enabled": False},
            "engine": {"kind": "sim", "backend": backend, "ray_address": address},
        },
        source="bench scale",
    )


class RSSMonitor:
    """Peak resident memory of this process and its descendants, sampled in a thread."""

    def __init__(self, period_s: float = 0.1) -> None:
        import psutil

        self._proc = psutil.Process(os.getpid())
        self._period = period_s
        self._stop = threading.Event()
        self.peak_bytes = self.now()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def now(self) -> int:
        import psutil

        total = 0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _watch(self) -> None:
        while not self._stop.wait(self._period):
            self.peak_bytes = max(self.peak_bytes, self.now())

    def __enter__(self) -> RSSMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.now())


def _simulated(spec: ExperimentSpec, backend: str, address: str | None) -> dict[str, Any]:
    """Run ``spec`` in the simulator; its rounds, setup time and memory."""
    from simulator import simulate

    started = time.perf_counter()
    with RSSMonitor() as rss:
        base = rss.now()
        result = simulate(spec, experiment_id=spec.name, backend=backend, address=address)
    total = time.perf_counter() - started
    walls = [float(r["wall_s"]) for r in result.rounds]
    return {
        "result": result,
        "setup_s": max(0.0, total - sum(walls)),
        "walls": walls,
        "peak": rss.peak_bytes,
        "base": base,
    }


def run_scale_bench(
    ues: int,
    *,
    rounds: int = 3,
    backend: str = "local",
    address: str | None = None,
    vs_flower: bool = False,
) -> dict[str, Any]:
    """The benchmark's JSON object (see the module docstring)."""
    from simulator.driver import PHASES

    spec = scale_spec(ues, rounds=rounds, backend=backend, address=address)
    run = _simulated(spec, backend, address)
    rows = run["result"].rounds
    split = {p: float(np.mean([r["details"]["sim_s"][p] for r in rows])) for p in PHASES}
    trained = sum(len(r["details"]["contributors"]) * (60000 // ues) for r in rows)
    train_s = sum(r["details"]["sim_s"]["train"] for r in rows)
    mb = 1024.0 * 1024.0
    out: dict[str, Any] = {
        "ues": ues,
        "rounds": len(rows),
        "backend": run["result"].backend,
        "workers": run["result"].workers,
        "channel": run["result"].channel,
        "samples_per_ue": 60000 // ues,
        "s_per_round": round(float(np.mean(run["walls"])), 3),
        "s_per_round_max": round(float(np.max(run["walls"])), 3),
        "setup_s": round(run["setup_s"], 2),
        "split_s": {k: round(v, 3) for k, v in split.items()},
        "train_samples_per_s": round(trained / train_s, 1) if train_s > 0 else None,
        "peak_rss_mb": round(run["peak"] / mb, 1),
        "rss_mb_per_1000_ues": round((run["peak"] - run["base"]) / mb * 1000.0 / ues, 1),
        "final_accuracy": rows[-1]["accuracy"],
        "model_mean_latency_s": round(float(np.mean([r["model_latency_s"] for r in rows])), 3),
        "model_link_dropouts_per_round": float(np.mean([r["link_dropouts"] for r in rows])),
    }
    if vs_flower:
        from testbed.flower_bench import flower_round_seconds

        plain = scale_spec(
            ues, rounds=rounds, algorithm="fedavg", link=False, backend=backend, address=address
        )
        ours = _simulated(plain, backend, address)
        flower = flower_round_seconds(plain, rounds=rounds)
        sim_s = float(np.mean(ours["walls"]))
        flower_s = float(np.mean(flower))
        out.update(
            sim_fedavg_s_per_round=round(sim_s, 3),
            flower_s_per_round=round(flower_s, 3),
            flower_rounds_s=[round(x, 3) for x in flower],
            speedup=round(flower_s / sim_s, 2) if sim_s > 0 else None,
        )
    return out
