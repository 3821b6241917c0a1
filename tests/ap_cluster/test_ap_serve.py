"""`testbed ap serve`: one process per AP, CSI to the controller, restart after a crash."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ap_cluster import cluster_config_from_spec
from controller.csi import CSIStore, CSISubscriber
from protocol.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]


def _free_base_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"aps": {}}


def _until(cond: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_serve_publishes_every_ap_and_restarts_a_killed_one(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "name": "serve",
            "topology": {
                "aps": [{"id": "ap0", "antennas": 2}, {"id": "ap1", "antennas": 1}],
                "ues": [{"id": f"ue{u}", "speed_mps": 3.0} for u in range(3)],
            },
            "radio": {"sample_rate_hz": 2e5, "tau_c": 100, "tau_p": 4},
        }
    )
    cfg = cluster_config_from_spec(spec, pub_base_port=_free_base_port(), publish_interval_s=0.02)
    cfg = cfg.model_copy(
        update={
            "heartbeat_interval_s": 0.3,
            "restart": cfg.restart.model_copy(update={"backoff_initial_s": 0.2}),
        }
    )
    path = cfg.dump_yaml(tmp_path / "cluster.yaml")
    health = tmp_path / "health.json"
    store = CSIStore(ap_ids=["ap0", "ap1"], ue_ids=[u.id for u in spec.topology.ues], max_age_s=0.5)
    cmd = [sys.executable, "-m", "testbed", "ap", "serve", "--cluster", str(path)]
    cmd += ["--health-file", str(health), "--report-every", "0.3"]
    with CSISubscriber(cfg.endpoints(), store):
        log = (tmp_path / "serve.out").open("w")
        serve = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            assert _until(lambda: not store.snapshot().stale.any(), 30), "no CSI from every AP"
            snap = store.snapshot()
            assert snap.n_ant.tolist() == [2, 1]
            assert snap.h.shape == (2, 2, 3)
            # 2 s of stream, so that the restarted AP's frame numbers are visibly lower
            assert _until(lambda: store.latest("ap0").frame > 4000, 30)  # type: ignore[union-attr]
            pid = _health(health)["aps"]["ap0"]["pid"]
            os.kill(pid, signal.SIGKILL)
            assert _until(
                lambda: (
                    (a := _health(health)["aps"].get("ap0", {})).get("restarts") == 1
                    and a.get("state") == "running"
                ),
                30,
            ), _health(health)
            assert _until(lambda: store.counters.resets >= 1, 15)  # its frames restarted at 0
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=30)
            log.close()
    out = (tmp_path / "serve.out").read_text()
    assert serve.returncode == 0, out
    assert "Traceback" not in out
    final = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    assert {a["state"] for a in final["aps"].values()} == {"stopped"}
    assert store.counters.malformed == 0
    assert store.counters.unknown_ap == 0


def test_runners_stop_when_the_manager_is_killed(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "name": "orphan",
            "topology": {"aps": [{"id": "ap0", "antennas": 1}], "ues": [{"id": "ue0"}]},
            "radio": {"sample_rate_hz": 1e5, "tau_c": 100, "tau_p": 4},
        }
    )
    cfg = cluster_config_from_spec(spec, pub_base_port=_free_base_port())
    cfg = cfg.model_copy(update={"heartbeat_interval_s": 0.2})
    path = cfg.dump_yaml(tmp_path / "cluster.yaml")
    health = tmp_path / "health.json"
    cmd = [sys.executable, "-m", "testbed", "ap", "serve", "--cluster", str(path)]
    cmd += ["--health-file", str(health), "--report-every", "0.2"]
    serve = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _until(lambda: _health(health)["aps"].get("ap0", {}).get("state") == "running", 30)
        pid = _health(health)["aps"]["ap0"]["pid"]
    finally:
        serve.kill()
        serve.wait()

    def _gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat").read_text().split()
        return stat[2] == "Z"  # exited, waiting to be reaped by init

    assert _until(_gone, 10), "the AP runner outlived its manager"
