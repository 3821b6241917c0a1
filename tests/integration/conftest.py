"""Helpers of the integration tests: an experiment across real processes."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import numpy as np

from protocol import tensorfile
from protocol.spec import ExperimentSpec
from testbed.launcher import (
    ControllerAPI,
    controller_env,
    follow,
    free_port,
    processes,
    start_agent,
    start_ap_cluster,
    start_controller,
    wait_ready,
)


def run_networked(spec: ExperimentSpec, workdir: Path) -> tuple[str, list[dict[str, Any]]]:
    """Run ``spec`` to completion on the AP cluster (sim source, simulated air), the controller
    under uvicorn and one agent per UE; the experiment id and its committed rounds."""
    token, enrol = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True)
    with processes(workdir / "logs") as procs:
        csi, air = start_ap_cluster(spec, workdir, procs)
        assert air is not None
        start_controller(procs, controller_env(workdir, port, csi, token, enrol, air))
        wait_ready(url, procs, "controller")
        for ue in spec.topology.ues:
            start_agent(procs, ue, url, enrol, workdir)
        api = ControllerAPI(url, token)
        eid = api.create(spec)
        api.start(eid)
        final = follow(api, eid, spec.fl.rounds, procs)
        assert final["status"] == "completed", final
        return eid, api.rounds(eid)


def local_delta(spec: ExperimentSpec, ue_index: int, global_flat: np.ndarray, rnd: int) -> Any:
    """The update agent ``ue_index`` computes in round ``rnd`` (the agent's own code path)."""
    from edge_agent.data import load_dataset
    from edge_agent.models import build_model
    from edge_agent.training import configure_torch, local_train
    from simulator.clients import partition

    configure_torch(1)  # as the agents train: one thread, the same reduction order
    ds, fl = spec.dataset, spec.fl
    data = load_dataset(ds.name, "train", indices=partition(spec)[ue_index])
    result = local_train(
        build_model(spec.model.name, seed=spec.seed),
        data.x,
        data.y,
        epochs=fl.local_epochs,
        batch_size=fl.batch_size,
        lr=fl.learning_rate,
        momentum=fl.momentum,
        global_vector=global_flat,
        seed=spec.seed * 100003 + rnd,
    )
    return result.delta


def check_sums(spec: ExperimentSpec, workdir: Path, eid: str, rounds: list[dict[str, Any]]) -> None:
    """Every committed model = previous + sum_u q_u delta_u / sum q_u over the arrived updates."""
    models = workdir / "controller" / "models" / eid
    version = 0
    for r in rounds:
        link = r["details"]["link"]
        arrived = [u for u, s in zip(link["ue_ids"], link["status"], strict=True) if s == "arrived"]
        contributors = r["details"]["contributors"]
        assert sorted(contributors) == sorted(arrived) or not r["updated"]
        if not r["updated"]:
            continue
        tensors, order, _ = tensorfile.decode((models / f"v{version}.safetensors").read_bytes())
        flat = tensorfile.flatten(tensors, order)
        q = r["details"]["weights"]
        total = sum(q[u] for u in contributors)
        expected = flat.astype(np.float64)
        for u in contributors:
            delta = local_delta(spec, int(u[2:]), flat, r["index"])
            expected += q[u] * delta.astype(np.float64) / total
        # A round without an update makes no version: versions count the updates.
        got, _, _ = tensorfile.decode((models / f"v{version + 1}.safetensors").read_bytes())
        # Secure aggregation rounds each coordinate to 2^-16 (fixed point): exact up to that.
        np.testing.assert_allclose(tensorfile.flatten(got, order), expected, atol=1e-4)
        version += 1
