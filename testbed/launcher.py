"""`testbed run`: start the controller, the AP cluster and the agents; run one experiment.

Every part runs as its own process, exactly as in the lab: the AP cluster (`testbed ap serve`,
the real GNU Radio flowgraphs on the simulated source, or on USRPs), the controller
(`testbed controller serve` under uvicorn) and one `testbed agent run` per UE. The launcher
only talks to them over their public interfaces (REST), shows a progress bar, and writes the
results when the experiment ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from protocol.profiles import BUILTIN_PROFILES
from protocol.spec import ExperimentSpec, UESpec, UHDBackendSpec
from testbed.results import (
    mode_summary,
    summarise,
    write_metrics,
    write_plots,
    write_summary,
)

__all__ = ["Interrupted", "LaunchError", "Processes", "free_port", "run_experiment"]

_READY_TIMEOUT_S = 120.0
_POLL_S = 1.0


class LaunchError(RuntimeError):
    """A part of the testbed did not start or the experiment failed; the message says which."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Processes:
    """The child processes of one run, stopped in reverse order of start."""

    logs: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _files: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("ab")
        self._files.append(log)
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
        self.children[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """Kill one child at once (SIGKILL), as a crash would."""
        proc = self.children[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self, timeout_s: float = 10.0) -> None:
        """SIGTERM every child at once; SIGKILL those still running after ``timeout_s``."""
        live = [p for p in self.children.values() if p.poll() is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + timeout_s
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout_s)
        for f in self._files:
            f.close()

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP reached the launcher (SIGINT raises KeyboardInterrupt itself)."""


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(f"signal {signal.Signals(signum).name}")


@contextmanager
def processes(logs: Path) -> Iterator[Processes]:
    """The run's children, stopped on the way out: on success, on an error, and on SIGINT,
    SIGTERM or SIGHUP (as systemd, a CI runner or ``kill`` stops the launcher), which raise
    :class:`KeyboardInterrupt` in the main thread so this block's cleanup runs."""
    procs = Processes(logs)
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, _interrupt)
    try:
        yield procs
    finally:
        # A second signal during the cleanup must not cut it short.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        try:
            procs.stop_all()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _testbed() -> list[str]:
    return [sys.executable, "-m", "testbed"]


def wait_ready(url: str, procs: Processes, name: str, timeout_s: float = _READY_TIMEOUT_S) -> None:
    """Wait until ``url/readyz`` answers 200, or fail naming the process and its last log lines."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if procs.children[name].poll() is not None:
            raise LaunchError(f"{name} exited during start-up:\n{procs.tail(name)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise LaunchError(f"{name} not ready after {timeout_s:g} s:\n{procs.tail(name)}")


def start_ap_cluster(
    spec: ExperimentSpec, workdir: Path, procs: Processes, *, replay: Path | None = None
) -> tuple[list[str], str | None]:
    """Write the cluster file and start `testbed ap serve`; the CSI endpoints and the air's.

    With the sim backend the cluster also serves the simulated air (the true channel the link
    layer's blocks see); on hardware there is none (the controller uses the APs' measurements).
    With ``spec.record.enabled`` every AP records its IQ into ``workdir/recording``; with
    ``replay`` (a collection) a recording feeds the estimators instead of the source.
    """
    from ap_cluster import cluster_config_from_spec

    sim = not isinstance(spec.backend, UHDBackendSpec)
    config = cluster_config_from_spec(
        spec,
        pub_base_port=free_port(),
        air_port=free_port() if sim else None,
        record_dir=(workdir / "recording").resolve() if spec.record.enabled else None,
        replay=None if replay is None else replay.resolve(),
    )
    path = workdir / "cluster.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    procs.start("ap_cluster", [*_testbed(), "ap", "serve", "--cluster", str(path)], {})
    return list(config.endpoints()), config.air_endpoint()


def controller_env(
    workdir: Path, port: int, csi: list[str], token: str, enrol: str, air: str | None = None
) -> dict[str, str]:
    env = {
        "TESTBED_CONTROLLER_HOST": "127.0.0.1",
        "TESTBED_CONTROLLER_PORT": str(port),
        "TESTBED_CONTROLLER_TOKEN": token,
        "TESTBED_CONTROLLER_ENROL_TOKEN": enrol,
        "TESTBED_CONTROLLER_DATABASE_URL": f"sqlite:///{workdir / 'controller.db'}",
        "TESTBED_CONTROLLER_DATA_DIR": str(workdir / "controller"),
        "TESTBED_CONTROLLER_CSI_ENDPOINTS": json.dumps(csi),
    }
    if air is not None:
        env["TESTBED_CONTROLLER_AIR_ENDPOINT"] = air
    return env


def start_controller(procs: Processes, env: dict[str, str]) -> None:
    procs.start(
        "controller",
        [*_testbed(), "controller", "serve", "--log-level", "warning"],
        env,
    )


def start_agent(procs: Processes, ue: UESpec, url: str, enrol: str, workdir: Path) -> None:
    """One agent playing ``ue``: its device profile's DVFS levels on a simulated backend.

    (A custom profile's levels live in the spec only; such an agent runs the rpi4 levels and
    the controller models it with its own profile.)
    """
    profile = ue.profile if ue.profile in BUILTIN_PROFILES else "sim"
    argv = [*_testbed(), "agent", "run", "--id", ue.id, "--profile", profile]
    procs.start(
        f"agent-{ue.id}",
        [*argv, "--dvfs", "simulated", "--controller", url],
        {
            "TESTBED_AGENT_ENROL_TOKEN": enrol,
            "TESTBED_AGENT_STATE_DIR": str(workdir / "agents"),
            "TESTBED_AGENT_HEARTBEAT_S": "1.0",
        },
    )


class ControllerAPI:
    """The few operator calls the launcher makes."""

    def __init__(self, url: str, token: str) -> None:
        self._http = httpx.Client(
            base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120.0
        )

    def create(self, spec: ExperimentSpec) -> str:
        resp = self._http.post("/experiments", json=spec.model_dump(mode="json", by_alias=True))
        if resp.status_code == 422:  # the controller's own check of the spec: say what it said
            raise ValueError(f"the controller refused the spec: {resp.text[:2000]}")
        resp.raise_for_status()
        experiment_id: str = resp.json()["id"]
        return experiment_id

    def start(self, experiment_id: str) -> None:
        self._http.post(f"/experiments/{experiment_id}/start").raise_for_status()

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        resp = self._http.get(f"/experiments/{experiment_id}")
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def round(self, experiment_id: str, index: int) -> dict[str, Any]:
        """One committed round, with its allocation and details."""
        resp = self._http.get(f"/experiments/{experiment_id}/rounds/{index}")
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def rounds(self, experiment_id: str) -> list[dict[str, Any]]:
        resp = self._http.get(f"/experiments/{experiment_id}/rounds")
        resp.raise_for_status()
        result: list[dict[str, Any]] = resp.json()
        return result


def start_experiment(
    procs: Processes, spec: ExperimentSpec, url: str, token: str, enrol: str, workdir: Path
) -> tuple[ControllerAPI, str]:
    """Once the controller at ``url`` is ready: create and start the experiment, then one agent
    per UE (the experiment waits for them to enrol; starting it first keeps the agents' start-up
    load off its start); the operator's API and the experiment's id."""
    wait_ready(url, procs, "controller")
    api = ControllerAPI(url, token)
    experiment_id = api.create(spec)
    api.start(experiment_id)
    for ue in spec.topology.ues:
        start_agent(procs, ue, url, enrol, workdir)
    return api, experiment_id


def follow(api: ControllerAPI, experiment_id: str, total: int, procs: Processes) -> dict[str, Any]:
    """Poll the experiment with a progress bar until it completes or fails."""
    from tqdm import tqdm

    done = 0
    with tqdm(total=total, desc="rounds", unit="round", dynamic_ncols=True) as bar:
        while True:
            try:
                exp = api.experiment(experiment_id)
            except httpx.TransportError:
                time.sleep(_POLL_S)  # the controller may be restarting
                continue
            if exp["rounds_completed"] > done:
                rounds = api.rounds(experiment_id)
                last = rounds[-1]
                acc = last.get("accuracy")
                bar.set_postfix(
                    acc=f"{acc:.4f}" if acc is not None else "-",
                    T_model=f"{last['model_latency_s']:.2f}s",
                    link_drop=last["link_dropouts"],
                )
                bar.update(exp["rounds_completed"] - done)
                done = exp["rounds_completed"]
            if exp["status"] in ("completed", "failed", "stopped"):
                return exp
            if procs.children["controller"].poll() is not None:
                raise LaunchError(f"controller died:\n{procs.tail('controller')}")
            time.sleep(_POLL_S)


def run_experiment(
    spec: ExperimentSpec, out: Path, *, replay: Path | None = None
) -> dict[str, Any]:
    """Run ``spec`` end to end with local processes; write results to ``out`` (metrics.csv,
    rounds.json: every round's full record, summary.json, plots, and with ``record`` the APs'
    SigMF collection in ``out/recording``); the summary. ``replay``: a collection whose IQ
    feeds the APs' estimators."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.json").write_text(spec.model_dump_json(indent=2, by_alias=True))
    token, enrol = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.time()
    with processes(out / "logs") as procs:
        csi, air = start_ap_cluster(spec, out, procs, replay=replay)
        start_controller(procs, controller_env(out, port, csi, token, enrol, air))
        api, experiment_id = start_experiment(procs, spec, url, token, enrol, out)
        final = follow(api, experiment_id, spec.fl.rounds, procs)
        rounds = api.rounds(experiment_id)
    wall = time.time() - started
    recording = _finish_recording(spec, out, experiment_id, rounds)
    write_metrics(rounds, out / "metrics.csv")
    (out / "rounds.json").write_text(json.dumps(rounds, indent=1))
    plots = write_plots(rounds, [ue.id for ue in spec.topology.ues], out, mode=spec.mode)
    summary = {
        "experiment_id": experiment_id,
        "status": final["status"],
        "error": final.get("error"),
        "algorithm": spec.algorithm.name,
        **mode_summary(spec.mode, rounds),
        **summarise(rounds),
        "measured_wall_time_s": round(wall, 1),
        "secure_aggregation": spec.secure_aggregation.enabled,
        "link_layer": spec.link.enabled,
        "plots": [p.name for p in plots],
        **({} if recording is None else {"recording": str(recording)}),
        **({} if replay is None else {"replayed": str(replay)}),
    }
    write_summary(summary, out / "summary.json")
    if final["status"] != "completed":
        raise LaunchError(
            f"experiment {experiment_id} ended {final['status']}: {final.get('error')}"
        )
    return summary


def _finish_recording(
    spec: ExperimentSpec, out: Path, experiment_id: str, rounds: list[dict[str, Any]]
) -> Path | None:
    """The APs' recordings with the round boundaries and the experiment id added, collected
    again (the cluster wrote the collection when it stopped); None without a recording."""
    if not spec.record.enabled:
        return None
    from ap_cluster.recording import RecordingError, annotate_rounds, write_collection

    directory = out / "recording"
    try:
        annotate_rounds(directory, rounds, experiment_id=experiment_id)
        return write_collection(directory, spec.name, experiment_id=experiment_id)
    except RecordingError as err:
        raise LaunchError(f"the recording in {directory} could not be finished: {err}") from None
