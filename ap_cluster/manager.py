"""Cluster process manager: one runner process per AP, restarts with backoff, health.

``testbed ap serve --cluster cluster.yaml`` runs :meth:`ClusterManager.serve`. Each AP runs
``python -m ap_cluster.runner`` in its own process (GNU Radio flowgraphs do not share a
process well, and a crash stays contained). A process that exits, or stays silent longer than
``restart.heartbeat_timeout_s``, is restarted after a delay that doubles from
``backoff_initial_s`` up to ``backoff_max_s`` and resets after ``stable_after_s`` of uptime.

Health (:meth:`ClusterManager.health`)::

    {"t": 1712.3, "aps": {"ap0": {"state": "running", "pid": 123, "restarts": 0,
      "uptime_s": 12.0, "last_exit_code": null, "frames": 60000, "published": 600,
      "heartbeat_age_s": 0.4, "endpoint": "tcp://127.0.0.1:5600"}}}

``state`` is one of ``starting`` (no heartbeat yet), ``running``, ``backoff`` (waiting to
restart), ``failed`` (gave up after ``max_restarts``) or ``stopped``.

Simulated air: when the cluster file has an ``air`` endpoint (sim backend only), the manager
also runs an ``ap_cluster.air.AirServer`` in a thread of its own, from :meth:`start` to
:meth:`stop`, tells it the frame each AP's heartbeat reports (so that it builds the fading
ahead of the controller's requests), and the health report gains ``"air": {"endpoint": ...,
"running": true, "served": 12, "carried": 0, "rejected": 0, "caught_up": 40960, "ahead":
20000}`` (carried: the PHY requests of ``link.mode: iq``; the frame up to which the fading is
built, and how far past the APs it builds). With ``only``
(one manager per host), the manager that runs the cluster's first AP serves it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ap_cluster.config import ClusterConfig

if TYPE_CHECKING:
    from ap_cluster.air import AirServer

__all__ = ["ClusterManager"]


@dataclass
class _Child:
    ap_id: str
    endpoint: str
    proc: subprocess.Popen[str] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 0.0
    next_start_at: float = 0.0
    last_exit_code: int | None = None
    heartbeat: dict[str, Any] = field(default_factory=dict)
    heartbeat_at: float | None = None
    failed: bool = False
    ended: bool = False  # replay: the recording ran out (not restarted)


class ClusterManager:
    """Supervises the AP processes of ``cluster`` (written at ``cluster_path``).

    Args:
        only: run only these AP ids (a multi-host cluster runs one manager per host).
        python: interpreter for the runners.
        log: where runner output that is not a heartbeat and manager events go.
        serve_air: run the simulated air server (needs ``cluster.air`` and the sim backend);
            ``None``: when those hold and this manager runs the cluster's first AP.
    """

    def __init__(
        self,
        cluster: ClusterConfig,
        cluster_path: str | Path,
        *,
        only: list[str] | None = None,
        python: str = sys.executable,
        log: IO[str] | None = None,
        extra_args: list[str] | None = None,
        serve_air: bool | None = None,
    ) -> None:
        ids = [a.id for a in cluster.aps]
        for a in only or []:
            if a not in ids:
                raise ValueError(f"`only`: unknown AP `{a}`; known: {ids}")
        can_air = cluster.air is not None and cluster.backend == "sim"
        if serve_air and not can_air:
            raise ValueError("`serve_air`: the cluster has no `air` endpoint or is not sim")
        if serve_air is None:
            serve_air = can_air and (only is None or ids[0] in only)
        self.cluster = cluster
        self._path = str(cluster_path)
        self._python = python
        self._log = log or sys.stderr
        self._extra = extra_args or []
        self._lock = threading.Lock()
        self._stopped = False
        self._children = [
            _Child(a.id, a.connect) for a in cluster.aps if only is None or a.id in only
        ]
        self._serve_air = serve_air
        self.air: AirServer | None = None

    @property
    def air_enabled(self) -> bool:
        """Whether this manager serves the simulated air."""
        return self._serve_air

    # -- processes -----------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self._log.write(f"[ap serve] {text}\n")
        self._log.flush()

    def _spawn(self, c: _Child) -> None:
        cmd = [self._python, "-m", "ap_cluster.runner", "--cluster", self._path, "--ap", c.ap_id]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        c.proc = subprocess.Popen(
            cmd + self._extra, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
        )
        c.started_at, c.heartbeat, c.heartbeat_at = time.monotonic(), {}, None
        proc = c.proc
        threading.Thread(target=self._read, args=(c, proc), daemon=True).start()
        self._say(f"{c.ap_id}: started pid {proc.pid}")

    def _read(self, c: _Child, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and obj.get("event") == "heartbeat":
                with self._lock:
                    if c.proc is proc:
                        c.heartbeat, c.heartbeat_at = obj, time.monotonic()
                frames = obj.get("frames")
                if self.air is not None and isinstance(frames, int) and frames >= 0:
                    self.air.advance_to(frames)
            else:
                self._log.write(f"[{c.ap_id}] {line}")

    def start(self) -> None:
        """Start the air server (if any; ``AirServerError`` if it cannot bind), then every AP."""
        if self._serve_air and self.air is None:
            self._start_air()
        for c in self._children:
            self._spawn(c)

    def _start_air(self) -> None:
        from ap_cluster.air import AirServer  # sim mode only: loads sim_backend

        assert self.cluster.air is not None
        self.air = AirServer(self.cluster.spec, self.cluster.air.bind).start()
        self._say(f"simulated air on {self.air.endpoint}")

    def poll(self) -> None:
        """One supervision step: reap exits, kill silent processes, restart when due."""
        now = time.monotonic()
        pol = self.cluster.restart
        for c in self._children:
            if c.failed:
                continue
            if c.proc is None:
                if now >= c.next_start_at:
                    self._spawn(c)
                continue
            code = c.proc.poll()
            last = c.heartbeat_at or c.started_at
            if code is None and now - last > pol.heartbeat_timeout_s:
                self._say(f"{c.ap_id}: no heartbeat for {now - last:.1f} s; killing it")
                _terminate(c.proc)
                code = c.proc.returncode
            if code is None:
                continue
            uptime = now - c.started_at
            c.proc, c.last_exit_code = None, code
            if code == 0 and self.cluster.replay is not None:
                c.failed = c.ended = True  # replaying the recording again would rewind time
                self._say(f"{c.ap_id}: the recording it replays has ended")
                continue
            if uptime >= pol.stable_after_s:
                c.backoff_s = 0.0
            c.backoff_s = min(pol.backoff_max_s, max(pol.backoff_initial_s, 2 * c.backoff_s))
            if pol.max_restarts is not None and c.restarts >= pol.max_restarts:
                c.failed = True
                self._say(f"{c.ap_id}: exited with {code}; gave up after {c.restarts} restarts")
                continue
            c.restarts += 1
            c.next_start_at = now + c.backoff_s
            self._say(f"{c.ap_id}: exited with {code}; restart in {c.backoff_s:.1f} s")

    def health(self) -> dict[str, Any]:
        """The health report (module docstring)."""
        now = time.monotonic()
        aps: dict[str, Any] = {}
        with self._lock:
            for c in self._children:
                if c.ended:
                    state = "ended"
                elif c.failed:
                    state = "failed"
                elif self._stopped:
                    state = "stopped"
                elif c.proc is None:
                    state = "backoff"
                else:
                    state = "running" if c.heartbeat_at is not None else "starting"
                aps[c.ap_id] = {
                    "state": state,
                    "pid": c.proc.pid if c.proc is not None else None,
                    "restarts": c.restarts,
                    "uptime_s": round(now - c.started_at, 3) if c.proc is not None else 0.0,
                    "last_exit_code": c.last_exit_code,
                    "frames": c.heartbeat.get("frames"),
                    "published": c.heartbeat.get("published"),
                    "heartbeat_age_s": None
                    if c.heartbeat_at is None
                    else round(now - c.heartbeat_at, 3),
                    "endpoint": c.endpoint,
                }
        report: dict[str, Any] = {"t": time.time(), "aps": aps}
        if self.air is not None:
            report["air"] = {
                "endpoint": self.air.endpoint,
                "running": self.air.running,
                "served": self.air.served,
                "carried": self.air.carried,
                "rejected": self.air.rejected,
                "caught_up": self.air.caught_up,
                "ahead": self.air.ahead,
            }
        return report

    def stop(self) -> None:
        """Terminate every AP process (SIGTERM, then SIGKILL) and stop restarting them."""
        self._stopped = True
        # a recording AP hashes its data on the way out: give it the time that takes
        grace = 60.0 if self.cluster.record is not None else 5.0
        for c in self._children:
            if c.proc is not None:
                _terminate(c.proc, grace)
                c.last_exit_code, c.proc = c.proc.returncode, None
        if self.air is not None:
            self.air.stop()
        if self.cluster.record is not None:
            self._collect(Path(self.cluster.record.directory))
        self._say("stopped")

    def _collect(self, directory: Path) -> None:
        """Write the recordings' collection (the experiment's name), logging what fails."""
        from ap_cluster.recording import RecordingError, write_collection

        try:
            path = write_collection(directory, self.cluster.spec.name)
        except RecordingError as err:
            self._say(f"the recordings could not be collected: {err}")
            return
        self._say(f"recorded: {path}")

    def serve(
        self,
        stop: threading.Event,
        *,
        report_every_s: float = 5.0,
        on_health: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Supervise until ``stop`` is set; hand a health report to ``on_health`` periodically."""
        next_report = time.monotonic() + report_every_s
        try:
            self.start()
            while not stop.wait(0.2):
                self.poll()
                if on_health is not None and time.monotonic() >= next_report:
                    on_health(self.health())
                    next_report += report_every_s
        finally:
            self.stop()


def _terminate(proc: subprocess.Popen[str], timeout_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; always reaps."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
