"""Stopping by signal: `testbed run` takes down every process it started on SIGTERM and SIGHUP,
and an agent SIGTERMed in the middle of training exits within seconds (the step is abandoned).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from protocol.spec import parse_spec
from testbed.launcher import Processes, start_agent
from testbed.testing import TOKEN, Server, make_settings

_SPEC = {
    "name": "signals",
    "seed": 1,
    "topology": {"area_m": 200.0, "aps": [{"id": "ap0"}], "ues": [{"id": "ue0"}, {"id": "ue1"}]},
    "dataset": {"name": "mnist", "samples_per_client": 200},
    "fl": {"rounds": 500},
    "secure_aggregation": {"enabled": False},
}


def _until(check: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def _children_of_run(out: Path) -> list[psutil.Process]:
    """Every process whose command line or environment names the run's folder."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + " ".join(proc.environ().values())
        except psutil.Error:
            continue
        if str(out) in text and proc.pid != os.getpid():
            found.append(proc)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_testbed_run_stops_everything_it_started(tmp_path: Path, signum: int) -> None:
    spec_file, out = tmp_path / "spec.yaml", tmp_path / "run"
    spec_file.write_text(yaml.safe_dump(_SPEC))
    console = (tmp_path / "console.txt").open("wb")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "testbed", "run", str(spec_file), "--out", str(out)],
        stdout=console,
        stderr=subprocess.STDOUT,
    )
    try:
        # The AP cluster, the controller and both agents are up once a round has been logged.
        assert _until(lambda: len(_children_of_run(out)) >= 4, 120), "the run did not start"
        children = _children_of_run(out)
        launcher.send_signal(signum)
        launcher.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, f"still running after the launcher's exit: {alive}"
        assert launcher.returncode == 130
        console.close()
        assert "every process it started is stopped" in (tmp_path / "console.txt").read_text()
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for proc in _children_of_run(out):
            proc.kill()


@pytest.mark.slow
def test_an_agent_abandons_training_on_sigterm(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            **_SPEC,
            "topology": {"area_m": 200.0, "aps": [{"id": "ap0"}], "ues": [{"id": "ue0"}]},
            # Minutes of training: 20,000 samples, 50 epochs.
            "dataset": {"name": "mnist", "samples_per_client": 20000},
            "fl": {"rounds": 1, "local_epochs": 50},
        }
    )
    with Server(make_settings(tmp_path)) as srv:
        procs = Processes(tmp_path / "logs")
        try:
            start_agent(
                procs,
                spec.topology.ues[0],
                srv.url,
                srv.settings.enrol_token.get_secret_value(),
                tmp_path,
            )
            op = httpx.Client(
                base_url=f"{srv.url}/api/v1",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            )
            eid = op.post("/experiments", json=spec.model_dump(mode="json", by_alias=True)).json()[
                "id"
            ]
            assert op.post(f"/experiments/{eid}/start").status_code == 200
            board = srv.app.state.service.board
            assert _until(lambda: board.task_for("ue0").stage == "train", 120)
            # Past the model download and data loading, inside the epochs.
            time.sleep(8.0)
            agent = procs.children["agent-ue0"]
            assert agent.poll() is None
            sent = time.monotonic()
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=10)
            assert time.monotonic() - sent < 5.0
            assert agent.returncode == 0
            assert board.task_for("ue0").stage == "train"  # the stage was not finished
        finally:
            procs.stop_all()


@pytest.mark.slow
def test_the_controller_stops_within_seconds_of_sigterm(tmp_path: Path) -> None:
    """With an experiment running (its engine waiting for agents), SIGTERM ends it in < 5 s."""
    from testbed.launcher import (
        ControllerAPI,
        controller_env,
        free_port,
        start_controller,
        wait_ready,
    )

    port = free_port()
    token, enrol = "operator-token-Zq81xW4v", "enrol-token-Kp29yT6u"
    procs = Processes(tmp_path / "logs")
    try:
        start_controller(procs, controller_env(tmp_path, port, [], token, enrol))
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, procs, "controller")
        api = ControllerAPI(url, token)
        api.start(api.create(parse_spec(_SPEC)))
        controller = procs.children["controller"]
        sent = time.monotonic()
        controller.send_signal(signal.SIGTERM)
        controller.wait(timeout=15)
        assert time.monotonic() - sent < 5.0
    finally:
        procs.stop_all()
