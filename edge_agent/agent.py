"""The edge agent daemon: enrol, heartbeat, poll for round tasks and do them.

One agent plays one UE. For each task it is handed it does one stage (DESIGN section 8):
``init`` uploads the seeded initial model and loads the local data the task names; ``train``
sets the CPU frequency by DVFS, trains from the global model on the local partition and
reports its loss with the first secure-aggregation message; the upload stages send the
weighted update (masked, or in the clear); ``evaluate`` scores the new global model on this
agent's test shard. The agent survives controller restarts: every call retries until the
controller answers again.

The train report holds only what the agent measures (DESIGN section 12): the wall time of the
SGD loop, the frequency the DVFS backend applied, and, where the board has an INA3221, the
energy its input rail drew while training (the whole board, idle power included, over the
:func:`~edge_agent.training.local_train` call, and, with ``overlap_evaluation``, the scoring of
the global model that runs beside it). The controller models energy itself.

An agent plays one device profile (rpi4, jetson-nano or custom, from ``--profile``); a ``sim``
agent plays the profile each train task names. With a simulated DVFS backend (``--dvfs
simulated``, or ``auto`` on a host without writable cpufreq) the profile's levels are the ones
it applies, so a Jetson UE can be played on any machine.

Kept Python 3.8 compatible: it runs on JetPack.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, TypeVar

import numpy as np

from edge_agent.client import ControllerClient, ControllerUnavailable, Rejected, wait_for
from edge_agent.settings import SIM_PROFILES, AgentSettings
from protocol import tensorfile
from protocol.auth import load_or_create_identity
from protocol.profiles import DeviceProfile
from protocol.rounds import EvalReport, EvalTask, Task, TrainReport, TrainTask
from protocol.spec import DatasetSpec

if TYPE_CHECKING:
    from torch.nn import Module

    from edge_agent.dvfs import DVFSBackend
    from edge_agent.energy import EnergyMeter, EnergyReading
    from edge_agent.marl import MarlPlayer
    from edge_agent.training import TrainResult

__all__ = ["Agent"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass
class _RoundMemory:
    """What the agent keeps between the stages of one round attempt."""

    key: Tuple[str, int, int]
    delta: np.ndarray
    secagg: Any = None


@dataclass
class _DataCache:
    key: Optional[Tuple[str, int, int, int]] = None
    train: Any = None
    test: Dict[Tuple[int, int], Any] = field(default_factory=dict)


class Agent:
    """One edge agent, driven by :meth:`run` until :meth:`stop`."""

    def __init__(self, settings: AgentSettings) -> None:
        from edge_agent.training import configure_torch, warm_up

        self.settings = settings
        self.profile: DeviceProfile = settings.device_profile()
        self.dvfs = self._dvfs_backend(self.profile)  # first: a backend the host lacks raises
        self.meter = self._energy_meter()
        configure_torch(settings.torch_threads)
        warm_up()  # before enrolling: no round waits for torch's lazy imports
        key = self._key = load_or_create_identity(settings.state_dir / f"{settings.agent_id}.key")
        self.client = ControllerClient(
            settings.controller_url, settings.agent_id, key, settings.request_timeout_s
        )
        self._roster_path = settings.state_dir / f"{settings.agent_id}.roster.json"
        self._stop = threading.Event()
        self._round: Optional[_RoundMemory] = None
        self._data = _DataCache()
        self._models: Dict[Tuple[str, int], bytes] = {}
        self._marl: Optional[Tuple[Tuple[str, int], MarlPlayer]] = None
        self.stats: Dict[str, Any] = {"rounds_trained": 0, "stages_done": 0, "errors": 0}

    # -- devices ------------------------------------------------------------------------------
    def _dvfs_backend(self, profile: DeviceProfile) -> DVFSBackend:
        from edge_agent.dvfs import detect_backend

        s = self.settings
        kind = s.dvfs
        if kind == "auto" and s.profile in SIM_PROFILES:
            kind = "simulated"  # a sim agent is no particular board: never drive the host's
        return detect_backend(profile, s.dvfs_sysfs_root, kind=kind)

    def _energy_meter(self) -> Optional[EnergyMeter]:
        """The board's INA3221, or None: only a real meter measures (never the model)."""
        from edge_agent.energy import Ina3221Meter, detect_meter

        if self.settings.energy_meter == "none":
            return None
        meter = detect_meter(self.profile, self.settings.dvfs_sysfs_root, kind="auto")
        if isinstance(meter, Ina3221Meter):
            log.info("energy measured by INA3221 rails %s", [c.label for c in meter.channels])
            return meter
        return None

    def _play(self, t: TrainTask) -> None:
        """Take on the profile the task names, where this agent is a ``sim`` agent."""
        want = t.profile
        if want is None or want == self.profile.name:
            return
        if self.settings.profile not in SIM_PROFILES:
            log.warning(
                "task expects profile %s, this agent plays %s: keeping %s",
                want,
                self.profile.name,
                self.profile.name,
            )
            return
        try:
            profile = self.settings.device_profile(want)
        except KeyError as err:
            log.warning("cannot play the task's profile: %s; keeping %s", err, self.profile.name)
            return
        self.profile = profile
        if self.dvfs.name == "simulated":
            self.dvfs = self._dvfs_backend(profile)
            log.info("playing profile %s (simulated DVFS, its levels)", profile.name)
        else:
            log.warning("playing profile %s on the host's %s levels", profile.name, self.dvfs.name)

    def _metered(self, run: Callable[[], _T]) -> Tuple[_T, Optional[EnergyReading]]:
        """``run()`` inside the energy meter's interval: its result and the meter's reading
        (None without a meter, or when the meter failed: training goes on regardless)."""
        meter = self.meter
        if meter is None:
            return run(), None
        try:
            meter.start()
        except (OSError, ValueError) as err:
            log.warning("energy meter failed to start: %s", err)
            return run(), None
        reading: Optional[EnergyReading] = None
        try:
            result = run()
        finally:
            try:
                reading = meter.stop(samples=0, f_hz=0.0)
            except (OSError, ValueError) as err:
                log.warning("energy meter failed: %s", err)
        if reading is not None and not reading.energy_j >= 0:
            log.warning("energy meter read %s J; not reported", reading.energy_j)
            reading = None
        return result, reading

    # -- lifecycle ----------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Enrol, then serve tasks until stopped; restores DVFS settings on the way out."""
        s = self.settings
        try:
            self._enrol()
            beat = threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True)
            beat.start()
            while not self._stop.is_set():
                asked = time.monotonic()
                try:
                    task = wait_for(
                        "task",
                        lambda: self.client.task(wait_s=s.task_wait_s),
                        s.max_backoff_s,
                        s.give_up_after_s,
                    )
                except Rejected as err:
                    if err.status == 401:  # the controller lost us (e.g. a new database)
                        self._enrol()
                        continue
                    raise
                if task.stage == "idle":
                    # A long poll that came back idle has waited already; a controller that
                    # answered at once (no long polling) is polled again after poll_s.
                    if time.monotonic() - asked < min(s.task_wait_s, task.poll_s):
                        self._stop.wait(task.poll_s)
                    continue
                self._do(task)
        finally:
            self.dvfs.restore()
            self.client.close()

    def _enrol(self) -> None:
        s = self.settings
        wait_for(
            "enrol",
            lambda: self.client.enrol(s.profile, s.enrol_token),
            s.max_backoff_s,
            s.give_up_after_s,
        )
        log.info("agent %s enrolled at %s", s.agent_id, s.controller_url)

    def _heartbeats(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_s):
            try:
                self.client.heartbeat(
                    {
                        **self.stats,
                        "freq_hz": self.dvfs.current_hz(),
                        "profile": self.settings.profile,
                        "device_profile": self.profile.name,
                        "dvfs": self.dvfs.name,
                        "meter": self.meter.source if self.meter is not None else "none",
                    }
                )
            except (ControllerUnavailable, Rejected) as err:
                log.debug("heartbeat failed: %s", err)

    def _do(self, task: Task) -> None:
        handler = {
            "init": self._init,
            "train": self._train,
            "upload": self._upload,
            "evaluate": self._evaluate,
        }.get(task.stage, self._secagg_stage)
        try:
            body, content_type = handler(task)
            self.client.submit(task, body, content_type)
            self.stats["stages_done"] += 1
        except Rejected as err:
            # Late or duplicate: the controller moved on. Not fatal.
            log.info("stage %s of round %d refused: %s", task.stage, task.round, err.detail)
        except ControllerUnavailable as err:
            log.info("stage %s of round %d not delivered: %s", task.stage, task.round, err)
        except Exception:  # a failed stage is a dropout, never the end of the agent
            self.stats["errors"] += 1
            log.exception("stage %s of round %d failed", task.stage, task.round)

    # -- data and models ----------------------------------------------------------------------
    def _local_data(
        self, dataset: Dict[str, Any], client_index: int, n_clients: int, seed: int
    ) -> Any:
        """This agent's partition of the training set (cached while the task keeps it)."""
        from edge_agent.data import load_dataset, load_raw, partition_indices, resolve_data_dir

        ds = DatasetSpec.model_validate(dataset)
        # The whole spec: another experiment's partition or samples_per_client is other data.
        key = (ds.model_dump_json(), client_index, n_clients, seed)
        if self._data.key != key:
            data_dir = resolve_data_dir(self.settings.data_dir)
            if ds.path is not None:  # the spec confines it to a relative path without `..`
                data_dir = data_dir / ds.path
            _, labels = load_raw(ds.name, "train", data_dir=data_dir)
            parts = partition_indices(
                labels,
                n_clients,
                ds.partition,
                seed,
                samples_per_client=ds.samples_per_client,
                min_samples=ds.min_samples_per_client,
            )
            self._data = _DataCache(
                key=key,
                train=load_dataset(
                    ds.name, "train", data_dir=data_dir, indices=parts[client_index]
                ),
            )
        return self._data.train

    def _test_shard(self, dataset: str, shard: int, n_shards: int) -> Any:
        from edge_agent.data import load_dataset, load_raw

        if (shard, n_shards) not in self._data.test:
            _, labels = load_raw(dataset, "test", data_dir=self.settings.data_dir)
            idx = np.array_split(np.arange(labels.shape[0]), n_shards)[shard]
            self._data.test = {
                (shard, n_shards): load_dataset(
                    dataset, "test", data_dir=self.settings.data_dir, indices=idx
                )
            }
        return self._data.test[(shard, n_shards)]

    def _model_vector(self, experiment_id: str, version: int) -> np.ndarray:
        key = (experiment_id, version)
        if key not in self._models:
            blob = wait_for(
                "model",
                lambda: self.client.model(experiment_id, version),
                self.settings.max_backoff_s,
            )
            self._models = {key: blob}  # keep one: versions only move forward
        tensors, order, _ = tensorfile.decode(self._models[key])
        return tensorfile.flatten(tensors, order)

    # -- stages -------------------------------------------------------------------------------
    def _init(self, task: Task) -> Tuple[bytes, str]:
        from edge_agent.models import build_model

        if task.fedmarl is not None:  # the common initial DRQN; no local data to load
            from edge_agent.marl import initial_network

            m = task.fedmarl
            tensors, order = initial_network(m.config, m.n_agents, m.profiles, task.seed)
            return tensorfile.encode(tensors, order), "application/octet-stream"
        model = build_model(task.model_name, seed=task.seed)
        state = model.state_dict()
        tensors = {k: v.detach().to("cpu").float().numpy() for k, v in state.items()}
        p = task.prepare
        if p is not None:
            try:
                self._local_data(p.dataset, p.client_index, p.n_clients, p.seed)
            except Exception:  # the train stage loads it again and reports its own failure
                log.exception("could not load the local data ahead of the first round")
        return tensorfile.encode(tensors, list(state)), "application/octet-stream"

    def _train(self, task: Task) -> Tuple[bytes, str]:
        from edge_agent.models import build_model, vector_to_parameters
        from edge_agent.training import local_train

        t = task.train
        if t is None:
            raise ValueError("train task without `train` payload")
        self._play(t)
        if task.fedmarl is not None:
            return self._train_marl(task, t)
        data = self._local_data(t.dataset, t.client_index, t.n_clients, t.seed)
        w_global = self._model_vector(task.experiment_id, t.model_version)
        freq_applied = self.dvfs.set_frequency(t.freq_hz)
        model = build_model(t.model_name, seed=t.seed)
        # Built here, not in the scoring thread: building a model seeds torch's global RNG,
        # which the SGD loop's dropout draws from.
        scorer = build_model(task.model_name, seed=task.seed)
        vector_to_parameters(w_global, scorer)

        def train() -> TrainResult:
            return local_train(
                model,
                data.x,
                data.y,
                epochs=t.local_epochs,
                batch_size=t.batch_size,
                lr=t.learning_rate,
                momentum=t.momentum,
                fedprox_mu=t.fedprox_mu,
                global_vector=w_global,
                seed=t.seed * 100003 + task.round,
                loss_before=False,  # scored below, with the test shard
            )

        if self.settings.overlap_evaluation:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="score") as pool:
                side = pool.submit(self._score, task, scorer, data)
                result, reading = self._metered(train)
                scored, loss_before = side.result()
        else:
            scored, loss_before = self._score(task, scorer, data)
            result, reading = self._metered(train)
        result = replace(result, loss_before=loss_before)
        advert = self._remember(task, t, result.delta)
        report = TrainReport(
            loss=result.loss_before,
            loss_after=result.loss_after,
            samples=result.samples,
            train_s=result.seconds,
            freq_applied_hz=freq_applied,
            measured_energy_j=reading.energy_j if reading is not None else None,
            meter=reading.source if reading is not None else "none",
            secagg_advertise=advert,
            evaluation=None
            if scored is None
            else EvalReport(
                correct=scored[0],
                total=scored[1],
                test_loss=scored[2],
                train_loss=result.loss_before,
            ),
        )
        return report.model_dump_json().encode(), "application/json"

    def _marl_player(self, task: Task) -> MarlPlayer:
        """This experiment's DRQN learner (kept across rounds: its replay, target network
        and exploration schedule are the agent's own)."""
        from edge_agent.marl import MarlPlayer

        m = task.fedmarl
        if m is None:
            raise ValueError("not a fedmarl task")
        key = (task.experiment_id, m.agent_index)
        if self._marl is None or self._marl[0] != key:
            player = MarlPlayer(m.config, m.agent_index, m.n_agents, m.profiles, task.seed)
            self._marl = (key, player)
        return self._marl[1]

    def _marl_eval(self, task: Task, e: EvalTask, vector: np.ndarray) -> EvalReport:
        """``vector`` played greedily by every agent (seeded by the model version)."""
        from edge_agent.marl import eval_report

        return eval_report(self._marl_player(task).evaluate(vector, e.model_version))

    def _train_marl(self, task: Task, t: TrainTask) -> Tuple[bytes, str]:
        """``mode: fedmarl``'s train stage: score the federated network (when asked), learn
        from it for the round's episodes, report the network's change as the update."""

        player = self._marl_player(task)
        w_global = self._model_vector(task.experiment_id, t.model_version)
        freq_applied = self.dvfs.set_frequency(t.freq_hz)
        e = task.evaluate
        evaluation = None if e is None else self._marl_eval(task, e, w_global)
        result, reading = self._metered(lambda: player.train(w_global, task.round))
        advert = self._remember(task, t, result.delta)
        report = TrainReport(
            loss=result.loss,
            loss_after=result.loss,
            samples=max(1, result.transitions),
            train_s=result.seconds,
            freq_applied_hz=freq_applied,
            measured_energy_j=reading.energy_j if reading is not None else None,
            meter=reading.source if reading is not None else "none",
            secagg_advertise=advert,
            evaluation=evaluation,
        )
        return report.model_dump_json().encode(), "application/json"

    def _remember(self, task: Task, t: TrainTask, delta: np.ndarray) -> Optional[str]:
        """Keep the round's update for its upload stages and count the round; with secure
        aggregation, open its session: the key advert (base64) the train report carries."""
        from edge_agent.secagg_session import SecAggSession

        self._round = _RoundMemory((task.experiment_id, task.round, task.attempt), delta)
        advert: Optional[str] = None
        if t.secure_aggregation:
            if not task.secagg:
                raise ValueError("secure aggregation is on but the task has no set-up")
            self._round.secagg = SecAggSession(t.ue_id, self._key, task.secagg, self._roster_path)
            advert = base64.b64encode(self._round.secagg.advertise()).decode()
        self.stats["rounds_trained"] += 1
        return advert

    def _score(
        self, task: Task, model: Module, local: Any
    ) -> Tuple[Optional[Tuple[int, int, float]], float]:
        """The global ``model`` scored: ``((correct, total, loss) on the task's test shard, or
        None when the task asks for no evaluation; its mean loss on the local data)``. The
        first is the previous round's evaluation riding on this round's training, the second
        this round's loss before training (FAL's ``L_u``, and that evaluation's train loss).
        Draws no random numbers (it may run beside the SGD loop)."""
        from edge_agent.training import evaluate

        loss_before = evaluate(model, local.x, local.y)[1]
        e = task.evaluate
        if e is None:
            return None, loss_before
        shard = self._test_shard(local.name, e.shard_index, e.n_shards)
        acc, test_loss = evaluate(model, shard.x, shard.y)
        return (round(acc * len(shard)), len(shard), test_loss), loss_before

    def _memory(self, task: Task) -> _RoundMemory:
        mem = self._round
        if mem is None or mem.key != (task.experiment_id, task.round, task.attempt):
            raise ValueError(f"no training result for round {task.round} (attempt {task.attempt})")
        return mem

    def _upload(self, task: Task) -> Tuple[bytes, str]:
        mem = self._memory(task)
        weighted = (float(task.weight or 0.0) * mem.delta).astype("<f4")
        return weighted.tobytes(), "application/octet-stream"

    def _secagg_stage(self, task: Task) -> Tuple[bytes, str]:
        mem = self._memory(task)
        if mem.secagg is None:
            raise ValueError(f"stage {task.stage} without a secure-aggregation session")
        payload = base64.b64decode(task.secagg or "")
        out = mem.secagg.handle(task.stage, payload, mem.delta, float(task.weight or 0.0))
        return out, "application/octet-stream"

    def _evaluate(self, task: Task) -> Tuple[bytes, str]:
        from edge_agent.models import build_model, vector_to_parameters
        from edge_agent.training import evaluate

        e = task.evaluate
        if e is None:
            raise ValueError("evaluate task without `evaluate` payload")
        if task.fedmarl is not None:
            vector = self._model_vector(task.experiment_id, e.model_version)
            report = self._marl_eval(task, e, vector)
            return report.model_dump_json().encode(), "application/json"
        model = build_model(task.model_name, seed=task.seed)
        vector_to_parameters(self._model_vector(task.experiment_id, e.model_version), model)
        local = self._local_data(e.dataset, e.client_index, e.n_clients, task.seed)
        shard = self._test_shard(local.name, e.shard_index, e.n_shards)
        acc, test_loss = evaluate(model, shard.x, shard.y)
        _, train_loss = evaluate(model, local.x, local.y)
        report = EvalReport(
            correct=round(acc * len(shard)),
            total=len(shard),
            test_loss=test_loss,
            train_loss=train_loss,
        )
        return report.model_dump_json().encode(), "application/json"
