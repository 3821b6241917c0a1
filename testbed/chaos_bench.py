"""`testbed bench chaos`: the controller SIGKILLed at random moments of a running experiment.

A real run on this machine: the controller (`testbed controller serve`, SQLite or PostgreSQL by
URL) and one real agent per UE (`testbed agent run`, torch training on MNIST), secure
aggregation on. No AP cluster: the controller gets no CSI, so the link layer is skipped (every
reported update arrives); what is under test is the controller's persistence. At ``kills``
seeded random moments (uniform in ``[min_delay_s, max_delay_s]`` after the controller is
ready: inside training, the secure-aggregation stages, evaluation, or a commit) the controller
is killed with SIGKILL and started again on the same database and data directory; then the
experiment runs to its end. A kill costs the round in progress, so on a machine fast enough to
outrun the kills the remaining ones land in the last round (uniform in ``[0, min_delay_s]``
after it is seen): every kill falls inside the run whatever the machine's speed. The checks:

- every round index appears exactly once (``rounds_lost``, ``rounds_repeated``);
- the model file of every committed version hashes to the SHA-256 its round recorded
  (``model_mismatches``);
- the experiment completes.

Every figure here is measured (wall clock, process memory); none is modelled.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

from protocol.spec import ExperimentSpec, parse_spec
from testbed.launcher import (
    ControllerAPI,
    LaunchError,
    Processes,
    controller_env,
    free_port,
    processes,
    start_controller,
    start_experiment,
    wait_ready,
)

__all__ = ["chaos_spec", "run_chaos"]

_FINISH_TIMEOUT_S = 900.0


def chaos_spec(rounds: int = 6, ues: int = 3, seed: int = 0) -> ExperimentSpec:
    """A small MNIST experiment with secure aggregation: short rounds, many commits."""
    return parse_spec(
        {
            "name": "chaos",
            "seed": seed,
            "topology": {
                "area_m": 200.0,
                "aps": [{"id": "ap0"}],
                "ues": [{"id": f"ue{i}"} for i in range(ues)],
            },
            "dataset": {"name": "mnist", "samples_per_client": 300},
            "fl": {"rounds": rounds, "batch_size": 32, "learning_rate": 0.05},
            "secure_aggregation": {"enabled": True},
        },
        source="chaos spec",
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _status(api: ControllerAPI, experiment_id: str) -> dict[str, Any] | None:
    try:
        return api.experiment(experiment_id)
    except (httpx.TransportError, httpx.HTTPStatusError):
        return None


def _rss_mb(proc: psutil.Process) -> float:
    try:
        return float(proc.memory_info().rss) / 2**20
    except psutil.Error:
        return 0.0


def _wait(
    procs: Processes,
    api: ControllerAPI,
    experiment_id: str,
    delay_s: float,
    last_round: int | None = None,
    last_delay_s: float = 0.0,
) -> tuple[dict[str, Any] | None, float]:
    """Sleep ``delay_s`` while sampling the controller; its last status and peak RSS, MiB.

    Once the experiment is seen in round ``last_round`` (its last), the sleep ends at most
    ``last_delay_s`` later: a kill drawn for later would miss the run on a fast machine.
    """
    proc = psutil.Process(procs.children["controller"].pid)
    peak, last = 0.0, None
    deadline = time.monotonic() + delay_s
    while time.monotonic() < deadline:
        peak = max(peak, _rss_mb(proc))
        status = _status(api, experiment_id)
        if status is not None:
            last = status
            if status["status"] in ("completed", "failed"):
                break
            if last_round is not None and (status.get("current_round") or 0) >= last_round:
                deadline = min(deadline, time.monotonic() + last_delay_s)
                last_round = None
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    return last, peak


def run_chaos(
    workdir: Path,
    kills: int = 20,
    seed: int = 0,
    rounds: int = 6,
    ues: int = 3,
    database_url: str | None = None,
    min_delay_s: float = 0.5,
    max_delay_s: float = 6.0,
    progress: Any = None,
) -> dict[str, Any]:
    """Run the chaos study in ``workdir``; the JSON-ready result (module docstring)."""
    rng = random.Random(seed)
    spec = chaos_spec(rounds=rounds, ues=ues, seed=seed)
    workdir.mkdir(parents=True, exist_ok=True)
    token, enrol = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = controller_env(workdir, port, [], token, enrol)
    if database_url is not None:
        env["TESTBED_CONTROLLER_DATABASE_URL"] = database_url
    started = time.monotonic()
    moments: list[dict[str, Any]] = []
    peak_rss = 0.0
    with processes(workdir / "logs") as procs:
        start_controller(procs, env)
        api, experiment_id = start_experiment(procs, spec, url, token, enrol, workdir)
        for _ in range(kills):
            delay = rng.uniform(min_delay_s, max_delay_s)
            last_delay = rng.uniform(0.0, min_delay_s)
            waited = time.monotonic()
            last, peak = _wait(procs, api, experiment_id, delay, rounds - 1, last_delay)
            waited = time.monotonic() - waited
            peak_rss = max(peak_rss, peak)
            if last is not None and last["status"] in ("completed", "failed"):
                break
            procs.kill("controller")
            moments.append(
                {
                    "after_ready_s": round(waited, 2),
                    "rounds_completed": None if last is None else last["rounds_completed"],
                    "current_round": None if last is None else last["current_round"],
                }
            )
            if progress is not None:
                progress(1)
            start_controller(procs, env)
            wait_ready(url, procs, "controller")
        final, peak = _wait(procs, api, experiment_id, _FINISH_TIMEOUT_S)
        peak_rss = max(peak_rss, peak)
        if final is None:
            raise LaunchError(f"controller unreachable at the end:\n{procs.tail('controller')}")
        rounds_seen = [r["index"] for r in api.rounds(experiment_id)]
        full = [api.round(experiment_id, i) for i in sorted(set(rounds_seen))]
    counts = Counter(rounds_seen)
    models = workdir / "controller" / "models" / experiment_id
    checked = mismatches = 0
    for r in full:
        details = r.get("details") or {}
        if "model_sha256" not in details:
            continue
        checked += 1
        path = models / f"v{details['model_version']}.safetensors"
        if not path.exists() or _sha256(path) != details["model_sha256"]:
            mismatches += 1
    return {
        "kills": kills,
        "kills_done": len(moments),
        "rounds": rounds,
        "rounds_committed": len(counts),
        "rounds_lost": sum(1 for i in range(rounds) if counts[i] == 0),
        "rounds_repeated": sum(n - 1 for n in counts.values() if n > 1),
        "model_files_checked": checked,
        "model_mismatches": mismatches,
        "completed": final["status"] == "completed",
        "status": final["status"],
        "error": final.get("error"),
        "final_accuracy": full[-1].get("accuracy") if full else None,
        "database": "postgresql" if database_url and "postgresql" in database_url else "sqlite",
        "secure_aggregation": True,
        "link_layer": "skipped (no CSI: no AP cluster in this study)",
        "peak_rss_mb": round(peak_rss, 1),
        "measured_wall_s": round(time.monotonic() - started, 1),
        "moments": moments,
    }
