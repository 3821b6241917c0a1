"""Load bench: many lightweight agents against the real controller, one experiment end to end.

The controller runs as in the lab (`testbed controller serve` under uvicorn, its own process);
the agents are coroutines of this process, each with its own :class:`httpx.AsyncClient` and
Ed25519 identity, speaking the agents' protocol (enrol, signed heartbeats, task polls and
stage submissions). They do not train: a train report carries made-up numbers (the loss falls
with the round, ``train_s`` is a sleep of ``train_s`` seconds) and every upload is the task's
weight times one fixed random vector, at the model's full size (``dim`` float32). Plain
aggregation (no secure aggregation) and no radio: the controller gets no CSI endpoints, so it
skips the link layer and every reported update arrives.

While the experiment runs the controller's resident memory is polled (psutil, every
``rss_period_s``), so its peak shows whether uploads are summed as they arrive (memory
O(model)) or buffered (O(agents x model)). MB here is 2^20 bytes.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import tensorfile
from protocol.auth import public_key_b64, sign_request
from protocol.rounds import (
    ENROL_TOKEN_HEADER,
    EnrolRequest,
    EvalReport,
    EvalTask,
    Task,
    TrainReport,
)
from protocol.spec import DATASET_TRAIN_SIZES, ExperimentSpec, parse_spec
from testbed.launcher import (
    LaunchError,
    Processes,
    controller_env,
    free_port,
    processes,
    start_controller,
    wait_ready,
)

__all__ = [
    "MODEL_PARAMETERS",
    "LoadConfig",
    "load_spec",
    "pick_model",
    "run_load",
]

_API = "/api/v1"
_MiB = 2**20
#: Parameters of each built-in model (``edge_agent.models.num_parameters``), smallest first.
MODEL_PARAMETERS: dict[str, int] = {"wifi_mlp": 5_508, "mnist_cnn": 80_202, "cifar_cnn": 815_018}
#: The dataset each model is for (``protocol.spec`` cross-checks the pair).
_MODEL_DATASET = {"wifi_mlp": "wifi", "mnist_cnn": "mnist", "cifar_cnn": "cifar10"}
#: Test-set sizes, samples (an evaluate report's ``total`` is one shard of it).
_TEST_SIZES = {"wifi": 6_214, "mnist": 10_000, "cifar10": 10_000}
#: Local samples per client the spec caps (each agent reports this many).
_SAMPLES_PER_CLIENT = 50
#: Stages whose submission is as big as the model.
_MODEL_SIZED = ("init", "upload")
_NOTE = (
    "lightweight agents: no training; train and evaluate reports carry made-up numbers "
    "(train_s is a sleep), every upload is weight x one fixed random float32 vector of the "
    "model's full size; plain aggregation, no radio (link layer skipped)"
)


@dataclass(frozen=True)
class LoadConfig:
    """What one load run does."""

    agents: int = 200
    """Lightweight agents, one per UE (``ue0`` ... ``ue{agents-1}``)."""
    dim: int = 1_000_000
    """Wanted model size, parameters: the smallest built-in model at least this big is used."""
    rounds: int = 3
    """Federated rounds of the experiment."""
    seed: int = 0
    """Seed of the spec and of the update vector."""
    train_s: float = 0.2
    """What a client's fake training sleeps (and reports as its measured time), s."""
    upload_slots: int = 0
    """Model-sized submissions (``init``, ``upload``) in flight at once over all agents, as
    over one shared uplink (0: no limit, every agent sends as soon as it is told to)."""
    heartbeat_s: float = 5.0
    """Interval between two heartbeats of one agent, s (the controller's timeout: 30 s)."""
    round_deadline_s: float = 120.0
    """The spec's wall-clock deadline of each stage, s."""
    timeout_s: float = 1800.0
    """Give up (``completed: false``) when the experiment has not ended after this, s."""
    rss_period_s: float = 0.05
    """Interval of the controller's memory samples, s."""
    workdir: Path | None = None
    """Where the controller keeps its database, models and log (default: a temporary folder)."""


def pick_model(dim: int) -> str:
    """The smallest built-in model with at least ``dim`` parameters, else the largest."""
    by_size = sorted(MODEL_PARAMETERS, key=MODEL_PARAMETERS.__getitem__)
    return next((m for m in by_size if MODEL_PARAMETERS[m] >= dim), by_size[-1])


def load_spec(config: LoadConfig, model: str) -> ExperimentSpec:
    """The bench's experiment: ``config.agents`` rpi4 UEs, one AP, FedAvg, plain aggregation."""
    dataset = _MODEL_DATASET[model]
    per_client = min(_SAMPLES_PER_CLIENT, DATASET_TRAIN_SIZES[dataset] // config.agents)
    return parse_spec(
        {
            "name": "bench-load",
            "seed": config.seed,
            "topology": {
                "aps": [{"id": "ap0", "antennas": 2, "position_m": [500.0, 500.0]}],
                "ues": [{"id": f"ue{i}", "profile": "rpi4"} for i in range(config.agents)],
            },
            "dataset": {
                "name": dataset,
                "samples_per_client": max(1, per_client),
                "min_samples_per_client": 1,
            },
            "model": {"name": model},
            "algorithm": {"name": "fedavg"},
            "fl": {"rounds": config.rounds, "round_deadline_s": config.round_deadline_s},
            "secure_aggregation": {"enabled": False},
        },
        source="bench-load",
    )


# -- the agents' side ------------------------------------------------------------------------
@dataclass
class _Traffic:
    """What the agents sent and received, counted as it happens."""

    requests: Counter[str] = field(default_factory=Counter)
    bytes_up: int = 0
    bytes_down: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    transport_errors: int = 0

    def snapshot(self) -> tuple[int, int, int]:
        """(requests, bytes up, bytes down) so far."""
        return sum(self.requests.values()), self.bytes_up, self.bytes_down


class _Assets:
    """What every agent sends the same of: the seeded initial model and the update direction."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._init: dict[tuple[str, int], bytes] = {}
        self._delta: np.ndarray | None = None

    def initial_model(self, model_name: str, seed: int) -> bytes:
        """The safetensors bytes of ``build_model(model_name, seed)`` (built once, as every
        agent's ``init`` stage would build it)."""
        key = (model_name, seed)
        if key not in self._init:
            from edge_agent.models import build_model

            state = build_model(model_name, seed=seed).state_dict()
            tensors = {k: v.detach().to("cpu").float().numpy() for k, v in state.items()}
            self._init[key] = tensorfile.encode(tensors, list(state))
        return self._init[key]

    def dim(self, model_name: str, seed: int) -> int:
        """Parameters of the model, from its initial model file."""
        tensors, order, _ = tensorfile.decode(self.initial_model(model_name, seed))
        return sum(int(np.prod(tensors[k].shape)) for k in order)

    def update(self, model_name: str, seed: int, weight: float) -> bytes:
        """``weight`` times the fixed update direction: ``[dim]`` little-endian float32 bytes."""
        if self._delta is None:
            rng = np.random.default_rng(self._seed)
            dim = self.dim(model_name, seed)
            self._delta = rng.normal(0.0, 1e-3, dim).astype(np.float32)
        weighted: np.ndarray = (np.float32(weight) * self._delta).astype("<f4")
        return weighted.tobytes()


class _LightAgent:
    """One agent: enrol, heartbeat, poll, answer each stage at once (no training)."""

    def __init__(
        self,
        ue_id: str,
        http: httpx.AsyncClient,
        assets: _Assets,
        traffic: _Traffic,
        config: LoadConfig,
        slots: asyncio.Semaphore | None,
    ) -> None:
        self.id = ue_id
        self._http, self._assets, self._traffic, self._config = http, assets, traffic, config
        self._slots = slots
        self._key = Ed25519PrivateKey.generate()
        self._have_version: tuple[str, int] | None = None  # the model it downloaded last

    async def _call(
        self,
        kind: str,
        method: str,
        path: str,
        body: bytes = b"",
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response | None:
        """One signed request (unsigned with ``headers``); None when it never got an answer."""
        target = httpx.URL(_API + path, params=params).raw_path.decode()
        all_headers = {"Content-Type": content_type}
        if headers is None:
            all_headers.update(sign_request(self._key, self.id, method, target, body))
        else:
            all_headers.update(headers)
        self._traffic.requests[kind] += 1
        self._traffic.bytes_up += len(body)
        try:
            resp = await self._http.request(method, target, content=body, headers=all_headers)
        except httpx.TransportError:
            self._traffic.transport_errors += 1
            return None
        self._traffic.bytes_down += len(resp.content)
        return resp

    async def enrol(self, enrol_token: str) -> None:
        req = EnrolRequest(agent_id=self.id, profile="rpi4", public_key=public_key_b64(self._key))
        for _ in range(20):
            resp = await self._call(
                "enrol",
                "POST",
                "/agents/enrol",
                req.model_dump_json().encode(),
                headers={ENROL_TOKEN_HEADER: enrol_token},
            )
            if resp is not None and resp.status_code == 200:
                return
            await asyncio.sleep(0.5)
        raise LaunchError(f"agent {self.id} could not enrol")

    async def heartbeats(self, stop: asyncio.Event) -> None:
        body = json.dumps({"status": {"bench": "load"}}).encode()
        while not await _wait(stop, self._config.heartbeat_s):
            await self._call("heartbeat", "POST", f"/agents/{self.id}/heartbeat", body)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll for tasks and do them until ``stop``."""
        while not stop.is_set():
            resp = await self._call("task", "GET", f"/agents/{self.id}/task")
            if resp is None or resp.status_code != 200:
                await _wait(stop, 0.5)
                continue
            task = Task.model_validate_json(resp.content)
            if task.stage == "idle":
                await _wait(stop, task.poll_s * (0.8 + 0.4 * secrets.randbelow(1000) / 1000))
                continue
            answer = await self._answer(task)
            if answer is None:  # not a stage of plain aggregation: wait for the next one
                await _wait(stop, task.poll_s)
                continue
            slot = self._slots if task.stage in _MODEL_SIZED else None
            async with slot if slot is not None else nullcontext():
                await self._submit(task, *answer)

    async def _submit(self, task: Task, body: bytes, content_type: str) -> None:
        path = f"/experiments/{task.experiment_id}/rounds/{task.round}/{task.stage}"
        params = {"attempt": task.attempt}
        got = await self._call("submit", "POST", path, body, params, content_type)
        if got is not None and got.status_code != 202:
            self._traffic.refused[f"{task.stage}:{got.status_code}"] += 1

    async def _download(self, experiment_id: str, version: int) -> None:
        """Fetch a model version unless it is the one fetched last (as an agent caches one)."""
        if self._have_version == (experiment_id, version):
            return
        path = f"/experiments/{experiment_id}/models/{version}"
        resp = await self._call("model", "GET", path)
        if resp is not None and resp.status_code == 200:
            self._have_version = (experiment_id, version)

    async def _answer(self, task: Task) -> tuple[bytes, str] | None:
        """The body of this stage's submission; None: a stage this agent does not play."""
        octets = "application/octet-stream"
        if task.stage == "init":
            return self._assets.initial_model(task.model_name, task.seed), octets
        if task.stage == "train" and task.train is not None:
            t = task.train
            await self._download(task.experiment_id, t.model_version)
            await asyncio.sleep(self._config.train_s)
            loss = 2.3 * 0.9**task.round
            report = TrainReport(
                loss=loss,
                loss_after=0.9 * loss,
                samples=int(t.dataset.get("samples_per_client") or _SAMPLES_PER_CLIENT),
                train_s=self._config.train_s,
                freq_applied_hz=t.freq_hz,
                # The previous round's evaluation rides on this round's training.
                evaluation=_made_up_evaluation(task.evaluate, task.round - 1, loss)
                if task.evaluate is not None
                else None,
            )
            return report.model_dump_json().encode(), "application/json"
        if task.stage == "upload":
            weight = float(task.weight or 0.0)
            return self._assets.update(task.model_name, task.seed, weight), octets
        if task.stage == "evaluate" and task.evaluate is not None:
            await self._download(task.experiment_id, task.evaluate.model_version)
            report_e = _made_up_evaluation(task.evaluate, task.round, 2.2 * 0.9 ** (task.round + 1))
            return report_e.model_dump_json().encode(), "application/json"
        return None


def _made_up_evaluation(e: EvalTask, after_round: int, train_loss: float) -> EvalReport:
    """A plausible evaluation of the model round ``after_round`` made (not computed)."""
    total = _TEST_SIZES[str(e.dataset.get("name", "mnist"))] // e.n_shards
    accuracy = 0.1 + 0.8 * (1.0 - 0.8 ** (after_round + 1))
    return EvalReport(
        correct=round(accuracy * total),
        total=total,
        test_loss=2.3 * 0.9 ** (after_round + 1),
        train_loss=train_loss,
    )


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop``; whether ``stop`` is set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


# -- the controller's memory -----------------------------------------------------------------
class _RSSMonitor:
    """Polls one process's resident set size in a thread; ``peak_mb`` since :meth:`reset`."""

    def __init__(self, pid: int, period_s: float) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self._period_s = period_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.peak_mb = 0.0
        self.samples = 0
        self._thread = threading.Thread(target=self._poll, name="rss", daemon=True)

    def now_mb(self) -> float:
        return float(self._proc.memory_info().rss) / _MiB

    def hwm_mb(self) -> float | None:
        """The kernel's high-water mark of the process's RSS (Linux ``VmHWM``), or None."""
        try:
            for line in Path(f"/proc/{self._proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def cpu_s(self) -> float:
        """CPU time the process has used so far (user + system), s."""
        times = self._proc.cpu_times()
        return float(times.user + times.system)

    def reset(self) -> float:
        """Start the peak afresh from the current RSS; return it, MB."""
        now = self.now_mb()
        with self._lock:
            self.peak_mb = now
        return now

    def _poll(self) -> None:
        while not self._stop.wait(self._period_s):
            try:
                rss = self.now_mb()
            except Exception:  # the process is gone: nothing more to measure
                return
            with self._lock:
                self.peak_mb = max(self.peak_mb, rss)
                self.samples += 1

    @contextmanager
    def running(self) -> Iterator[_RSSMonitor]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=5.0)


# -- the run ---------------------------------------------------------------------------------
async def _drive(
    config: LoadConfig,
    spec: ExperimentSpec,
    url: str,
    token: str,
    enrol_token: str,
    rss: _RSSMonitor,
    procs: Processes,
) -> dict[str, Any]:
    """Enrol the agents, run the experiment to its end, and gather the numbers."""
    traffic = _Traffic()
    assets = _Assets(config.seed)
    async with AsyncExitStack() as clients:
        operator = await clients.enter_async_context(
            httpx.AsyncClient(
                base_url=f"{url}{_API}", headers={"Authorization": f"Bearer {token}"}, timeout=60.0
            )
        )
        # One client per agent, as on the boards (a shared pool scans all its connections for
        # every request: O(agents) each). No TLS here; one context spares loading it per client.
        tls = ssl.create_default_context()
        slots = asyncio.Semaphore(config.upload_slots) if config.upload_slots > 0 else None
        agents = []
        for ue in spec.topology.ues:
            http = await clients.enter_async_context(
                httpx.AsyncClient(
                    base_url=url,
                    limits=httpx.Limits(max_connections=2),
                    timeout=httpx.Timeout(120.0, pool=None),
                    verify=tls,
                )
            )
            agents.append(_LightAgent(ue.id, http, assets, traffic, config, slots))
        await asyncio.gather(*(a.enrol(enrol_token) for a in agents))
        resp = await operator.post("/experiments", json=spec.model_dump(mode="json", by_alias=True))
        resp.raise_for_status()
        experiment_id: str = resp.json()["id"]
        # The controller counts the model's parameters (importing torch) for the first upload
        # to an experiment: make it do so now, so that the growth measured is the rounds' own.
        await operator.post(f"/experiments/{experiment_id}/rounds/0/upload", content=b"")
        assets.initial_model(spec.model.name, spec.seed)  # built before the clock starts
        await asyncio.sleep(0.5)
        rss_start = rss.reset()
        stop = asyncio.Event()
        workers = [asyncio.create_task(a.run(stop)) for a in agents]
        workers += [asyncio.create_task(a.heartbeats(stop)) for a in agents]
        before, kinds = traffic.snapshot(), Counter(traffic.requests)
        cpu = (rss.cpu_s(), time.process_time())
        started = time.monotonic()
        (await operator.post(f"/experiments/{experiment_id}/start")).raise_for_status()
        status = "running"
        while status in ("created", "running"):
            if time.monotonic() - started > config.timeout_s:
                status = "timed out"
                break
            if procs.children["controller"].poll() is not None:
                status = "controller died"
                break
            await asyncio.sleep(0.5)
            got = await operator.get(f"/experiments/{experiment_id}")
            if got.status_code == 200:
                status = got.json()["status"]
        wall = time.monotonic() - started
        after, kinds = traffic.snapshot(), traffic.requests - kinds
        controller_cpu_s, bench_cpu_s = rss.cpu_s() - cpu[0], time.process_time() - cpu[1]
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        rounds: list[dict[str, Any]] = []
        if procs.children["controller"].poll() is None:
            got = await operator.get(f"/experiments/{experiment_id}/rounds")
            if got.status_code == 200:
                rounds = got.json()
    dim = assets.dim(spec.model.name, spec.seed)
    seen = Counter(int(r["index"]) for r in rounds)
    walls = [float(r["wall_s"]) for r in rounds]
    requests, up, down = (a - b for a, b in zip(after, before, strict=True))
    return {
        "experiment_id": experiment_id,
        "status": status,
        "rounds_done": len(seen),
        "rounds_lost": sum(1 for i in range(config.rounds) if seen[i] == 0),
        "rounds_repeated": sum(n - 1 for n in seen.values() if n > 1),
        "wall_s": round(wall, 3),
        "requests": requests,
        "requests_per_s": round(requests / wall, 1) if wall > 0 else None,
        "upload_mb": round(up / _MiB, 1),
        "upload_mb_per_s": round(up / _MiB / wall, 2) if wall > 0 else None,
        "download_mb_per_s": round(down / _MiB / wall, 2) if wall > 0 else None,
        "mean_round_wall_s": round(sum(walls) / len(walls), 3) if walls else None,
        "requests_by_kind": dict(kinds),
        "controller_cpu_s": round(controller_cpu_s, 1),
        "bench_cpu_s": round(bench_cpu_s, 1),
        "refused": dict(traffic.refused),
        "transport_errors": traffic.transport_errors,
        "rss_mb_start": round(rss_start, 1),
        "dim": dim,
    }


def run_load(config: LoadConfig) -> dict[str, Any]:
    """Run one load experiment against a fresh controller; the JSON-ready report.

    Keys: ``agents``, ``dim`` (the model's parameters), ``model``, ``model_mb`` (one update),
    ``uploads_mb_per_round`` (``agents x model_mb``), ``rounds``, ``completed``,
    ``rounds_lost``, ``rounds_repeated``; over the experiment's ``wall_s`` (start to end, s):
    ``requests`` the agents made (``requests_by_kind``) and ``requests_per_s``,
    ``upload_mb_per_s`` and ``download_mb_per_s`` (request and response bodies),
    ``controller_cpu_s`` and ``bench_cpu_s`` (CPU time of the controller and of this process,
    s), ``refused`` (submissions not accepted, by ``stage:status``), ``transport_errors``;
    ``mean_round_wall_s`` (the controller's own round wall times, s); the controller's
    ``rss_mb_before`` (just before the experiment started), ``peak_rss_mb`` (polled) and
    ``rss_growth_mb`` (their difference), ``vm_hwm_mb`` (the kernel's lifetime high-water
    mark, start-up included). Raises :class:`LaunchError` when the controller does not start.
    """
    model = pick_model(config.dim)
    spec = load_spec(config, model)
    token, enrol = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        workdir = config.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with processes(workdir / "logs") as procs:
            start_controller(procs, controller_env(workdir, port, [], token, enrol))
            wait_ready(url, procs, "controller")
            rss = _RSSMonitor(procs.children["controller"].pid, config.rss_period_s)
            with rss.running():
                out = asyncio.run(_drive(config, spec, url, token, enrol, rss, procs))
                rss_before = out.pop("rss_mb_start")
                peak = rss.peak_mb
                hwm = rss.hwm_mb()
                samples = rss.samples
            log_tail = procs.tail("controller", 20) if out["status"] != "completed" else ""
    dim = int(out.pop("dim"))
    completed = out["status"] == "completed" and out["rounds_done"] == config.rounds
    return {
        "agents": config.agents,
        "dim": dim,
        "model": model,
        "dataset": spec.dataset.name,
        "model_mb": round(4 * dim / _MiB, 3),
        "uploads_mb_per_round": round(config.agents * 4 * dim / _MiB, 1),
        "rounds": config.rounds,
        "completed": completed,
        **out,
        "rss_mb_before": round(rss_before, 1),
        "peak_rss_mb": round(peak, 1),
        "rss_growth_mb": round(peak - rss_before, 1),
        "vm_hwm_mb": round(hwm, 1) if hwm is not None and math.isfinite(hwm) else None,
        "rss_samples": samples,
        "controller_log_tail": log_tail,
        "note": _NOTE,
    }
