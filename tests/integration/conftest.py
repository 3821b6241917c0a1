"""Helpers of the integration tests: an experiment across real processes."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

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
