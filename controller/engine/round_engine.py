"""The round engine: Algorithm 1 of DESIGN section 8, one experiment per thread.

Each round: refresh CSI and agent liveness; select clients; CRA and CSM allocate (P, B, f);
agents train and report their losses; FAL weights come back; the weighted updates are summed
(securely or in the clear); the new global model is evaluated by the agents on their test
shards; the reward updates the power policy; and the round, its allocation and the new model
are committed in one transaction before the next round starts. Agents that miss a deadline are
dropouts: the round completes without them.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from controller.db import Database, ExperimentRow, RoundRow
from controller.engine.aggregation import AggregationError, RoundAggregation, plain_aggregation
from controller.engine.board import StageKey, TaskBoard
from controller.engine.instances import build_instance
from controller.engine.liveness import AgentDirectory
from controller.models_store import ModelStore
from protocol import tensorfile
from protocol.rounds import EvalReport, EvalTask, Task, TrainReport, TrainTask
from protocol.spec import DATASET_TRAIN_SIZES, ExperimentSpec

__all__ = ["CSISource", "RoundEngine", "RoundFailedError"]

log = logging.getLogger(__name__)

#: Waiting for agents before the first round, s.
_ENROL_WAIT_S = 180.0
#: Waiting for missing agents before a later round, s.
_ROUND_WAIT_S = 2.0
_EVAL_DEADLINE_S = 60.0
_INIT_DEADLINE_S = 60.0


class RoundFailedError(RuntimeError):
    """This attempt of the round cannot complete (it is retried)."""


CSISource = Callable[[list[str]], "tuple[np.ndarray | None, dict[str, Any]]"]
#: (spec, experiment id, round attempt id, clients, dim, identity keys) -> aggregation
AggregationFactory = Callable[
    [ExperimentSpec, str, int, list[str], int, dict[str, bytes]], RoundAggregation
]


@dataclass
class _RoundState:
    """What one attempt of a round has gathered so far."""

    index: int
    attempt: int
    started: float = field(default_factory=time.time)
    details: dict[str, Any] = field(default_factory=dict)
    selected: list[str] = field(default_factory=list)
    allocation: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, TrainReport] = field(default_factory=dict)
    weight_of: dict[str, float] = field(default_factory=dict)
    contributors: list[str] = field(default_factory=list)


class RoundEngine:
    """Runs one experiment's rounds until done, stopped, or failed."""

    def __init__(
        self,
        *,
        experiment_id: str,
        spec: ExperimentSpec,
        db: Database,
        store: ModelStore,
        board: TaskBoard,
        agents: AgentDirectory,
        csi: CSISource,
        aggregation: AggregationFactory = plain_aggregation,
        strategy: Any,
    ) -> None:
        self.experiment_id = experiment_id
        self.spec = spec
        self._db, self._store, self._board, self._agents = db, store, board, agents
        self._csi, self._aggregation, self._strategy = csi, aggregation, strategy
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = np.random.default_rng(spec.seed)
        self._ue_ids = [ue.id for ue in spec.topology.ues]
        size = DATASET_TRAIN_SIZES[spec.dataset.name]
        guess = spec.dataset.samples_per_client or size // len(self._ue_ids)
        self._samples = dict.fromkeys(self._ue_ids, guess)
        self.current: _RoundState | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"engine-{self.experiment_id}")
        self._thread.daemon = True
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _set_status(self, status: str, error: str | None = None) -> None:
        with self._db.session() as s:
            row = s.get(ExperimentRow, self.experiment_id)
            if row is not None:
                row.status, row.error = status, error

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as err:  # the thread must record why it died
            log.exception("experiment %s failed", self.experiment_id)
            self._set_status("failed", f"{type(err).__name__}: {err}")

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            with self._db.session() as s:
                row = s.get(ExperimentRow, self.experiment_id)
                if row is None:
                    return
                next_round, version = row.next_round, row.model_version
            if next_round >= self.spec.fl.rounds:
                self._set_status("completed")
                return
            if version < 0:
                self._initialise_model()
                continue
            try:
                self._run_round(next_round, version)
            except RoundFailedError as err:
                log.warning("round %d failed (%s); retrying", next_round, err)
                self.stop_event.wait(1.0)
        self._board.idle(self._ue_ids)

    # -- helpers ----------------------------------------------------------------------------
    def _alive_agents(self) -> dict[str, str]:
        """UE id -> agent id for the UEs whose agent is alive."""
        profiles = {ue.id: ue.profile for ue in self.spec.topology.ues}
        return self._agents.assignment(self._ue_ids, profiles)

    def _wait_for_agents(self, need: int, patience_s: float) -> dict[str, str]:
        """UE -> agent once every UE has a live agent, or ``need`` do after ``patience_s``."""
        deadline = time.time() + patience_s
        while not self.stop_event.is_set():
            alive = self._alive_agents()
            if len(alive) >= len(self._ue_ids) or (len(alive) >= need and time.time() > deadline):
                return alive
            self.stop_event.wait(0.5)
        return {}

    def _stage(
        self,
        state: _RoundState,
        stage: str,
        tasks: dict[str, Task],
        deadline_s: float,
    ) -> dict[str, bytes]:
        """Publish ``tasks`` (agent id -> task) and collect submissions until the deadline."""
        key = StageKey(self.experiment_id, state.index, state.attempt, stage)
        deadline = time.time() + deadline_s
        for task in tasks.values():
            task.deadline_unix = deadline
        self._board.open_stage(key, tasks)
        try:
            got = self._board.wait(key, deadline, self.stop_event)
        finally:
            self._board.close_stage(key)
        if self.stop_event.is_set():
            raise RoundFailedError("stopped")
        state.details.setdefault("stage_s", {})[stage] = round(
            time.time() - (deadline - deadline_s), 3
        )
        return got

    def _base_task(self, state: _RoundState, stage: str, clients: list[str]) -> Task:
        return Task(
            experiment_id=self.experiment_id,
            round=state.index,
            attempt=state.attempt,
            stage=stage,
            model_name=self.spec.model.name,
            seed=self.spec.seed,
            clients=clients,
        )

    # -- first round: the initial model -----------------------------------------------------
    def _initialise_model(self) -> None:
        alive = self._wait_for_agents(need=1, patience_s=_ENROL_WAIT_S)
        if not alive:
            return
        state = _RoundState(index=-1, attempt=int(time.time()))
        agents = list(alive.values())
        tasks = {a: self._base_task(state, "init", agents) for a in agents}
        got = self._stage(state, "init", tasks, _INIT_DEADLINE_S)
        blobs = {a: b for a, b in got.items() if b}
        digests = {self._store.digest(b) for b in blobs.values()}
        for agent, blob in blobs.items():
            try:
                tensors, order, _ = tensorfile.decode(blob)
            except tensorfile.TensorFileError as err:
                log.warning("initial model from %s rejected: %s", agent, err)
                continue
            if len(digests) > 1:
                log.warning(
                    "agents sent %d different initial models; keeping %s's", len(digests), agent
                )
            path = self._store.save(self.experiment_id, 0, tensors, order)
            with self._db.session() as s:
                row = s.get(ExperimentRow, self.experiment_id)
                if row is not None:
                    row.model_version, row.model_path = 0, str(path)
            return
        raise RoundFailedError("no agent sent a usable initial model")

    # -- one round ----------------------------------------------------------------------------
    def _run_round(self, index: int, version: int) -> None:
        spec = self.spec
        state = _RoundState(index=index, attempt=int(time.time() * 1000) % 2**31)
        self.current = state
        need = spec.secagg_threshold if spec.secure_aggregation.enabled else 1
        # Before the first round, wait for the agents to enrol; later, go with who is alive.
        alive = self._wait_for_agents(need, _ENROL_WAIT_S if index == 0 else _ROUND_WAIT_S)
        if len(alive) < need:
            raise RoundFailedError(f"{len(alive)} agents alive, {need} needed")
        ues = sorted(alive, key=self._ue_ids.index)
        k = min(spec.clients_per_round, len(ues))
        selected = list(self._strategy.select_clients(index, ues, k, self._rng))
        state.selected = selected
        tensors, order = self._store.load(self.experiment_id, version)
        dim = int(sum(int(np.prod(tensors[k].shape)) for k in order))
        gains, csi_info = self._csi(selected)
        state.details["csi"] = csi_info
        state.allocation = self._allocate(selected, gains, update_bits=32.0 * dim)
        identities = {u: self._agents.public_key_raw(alive[u]) for u in selected}
        try:
            agg = self._aggregation(
                spec, self.experiment_id, state.attempt, selected, dim, identities
            )
        except AggregationError as err:
            raise RoundFailedError(str(err)) from None

        state.reports = reports = self._train(state, alive, version, agg.setup_inputs())
        adverts = {
            u: base64.b64decode(r.secagg_advertise)
            for u, r in reports.items()
            if r.secagg_advertise
        }
        try:
            bad = set(agg.receive_setup(adverts))
        except AggregationError as err:
            raise RoundFailedError(f"advertise keys: {err}") from None
        survivors = [u for u in selected if u in reports and u not in bad]
        if len(survivors) < need:
            raise RoundFailedError(
                f"{len(survivors)} of {len(selected)} clients reported, {need} needed"
            )
        losses = np.array([reports[u].loss for u in survivors])
        sizes = np.array([reports[u].samples for u in survivors], dtype=float)
        weights = np.asarray(self._strategy.aggregation_weights(losses, sizes), dtype=float)
        state.weight_of = dict(zip(survivors, weights.tolist(), strict=True))

        delta_sum = self._aggregate(state, agg, alive)
        total_weight = sum(state.weight_of[u] for u in state.contributors)
        if total_weight <= 0:
            raise RoundFailedError("the contributors' aggregation weights sum to zero")
        flat = tensorfile.flatten(tensors, order) + (delta_sum / total_weight).astype(np.float32)
        new_tensors = tensorfile.unflatten(flat, tensors, order)
        evals = self._evaluate(state, alive, new_tensors, order, version + 1)
        self._commit(state, evals)

    def _allocate(
        self, selected: list[str], gains: np.ndarray | None, update_bits: float
    ) -> dict[str, Any]:
        instance = build_instance(self.spec, selected, gains, self._samples, update_bits)
        allocation = self._strategy.allocate(instance)
        result: dict[str, Any] = allocation.to_dict()
        result["ue_ids"] = selected
        return result

    def _train(
        self,
        state: _RoundState,
        alive: dict[str, str],
        version: int,
        setup: dict[str, bytes | None],
    ) -> dict[str, TrainReport]:
        spec, selected, allocation = self.spec, state.selected, state.allocation
        tasks: dict[str, Task] = {}
        for i, ue in enumerate(selected):
            task = self._base_task(state, "train", selected)
            task.train = TrainTask(
                ue_id=ue,
                client_index=self._ue_ids.index(ue),
                n_clients=len(self._ue_ids),
                model_version=version,
                model_name=spec.model.name,
                dataset=spec.dataset.model_dump(mode="json"),
                seed=spec.seed,
                local_epochs=spec.fl.local_epochs,
                batch_size=spec.fl.batch_size,
                learning_rate=spec.fl.learning_rate,
                momentum=spec.fl.momentum,
                fedprox_mu=float(self._strategy.fedprox_mu),
                freq_hz=float(allocation["freq_hz"][i]),
                power_w=float(allocation["power_w"][i]),
                bandwidth_hz=float(allocation["bandwidth_hz"][i]),
                comm_latency_s=float(allocation.get("comm_latency_s", allocation["latency_s"])[i]),
                secure_aggregation=spec.secure_aggregation.enabled,
            )
            blob = setup.get(ue)
            task.secagg = base64.b64encode(blob).decode() if blob is not None else None
            tasks[alive[ue]] = task
        got = self._stage(state, "train", tasks, spec.fl.round_deadline_s)
        agent_to_ue = {a: u for u, a in alive.items()}
        reports: dict[str, TrainReport] = {}
        for agent, body in got.items():
            try:
                report = TrainReport.model_validate_json(body)
            except ValueError as err:
                log.warning("train report from %s rejected: %s", agent, err)
                continue
            if not math.isfinite(report.loss):
                log.warning("train report from %s rejected: non-finite loss", agent)
                continue
            ue = agent_to_ue[agent]
            reports[ue] = report
            self._samples[ue] = report.samples
        return reports

    def _aggregate(
        self, state: _RoundState, agg: RoundAggregation, alive: dict[str, str]
    ) -> np.ndarray:
        """Run the upload stages; the sum of the weighted updates (float64, ``[dim]``)."""
        survivors, weight_of = list(state.weight_of), state.weight_of
        agent_to_ue = {alive[u]: u for u in survivors}
        for stage in agg.stages:
            inputs = agg.inputs(stage)
            tasks = {}
            for ue, blob in inputs.items():
                if ue not in weight_of:  # did not report its loss: a dropout already
                    continue
                task = self._base_task(state, stage, survivors)
                task.weight = weight_of[ue]
                task.secagg = base64.b64encode(blob).decode() if blob is not None else None
                tasks[alive[ue]] = task
            got = self._stage(state, stage, tasks, self.spec.fl.round_deadline_s)
            try:
                rejected = agg.receive(stage, {agent_to_ue[a]: b for a, b in got.items()})
            except AggregationError as err:
                raise RoundFailedError(f"{stage}: {err}") from None
            state.details.setdefault("rejected", {})[stage] = rejected
        try:
            total, state.contributors = agg.result()
        except AggregationError as err:
            raise RoundFailedError(str(err)) from None
        return total

    def _evaluate(
        self,
        state: _RoundState,
        alive: dict[str, str],
        tensors: dict[str, np.ndarray],
        order: list[str],
        version: int,
    ) -> dict[str, EvalReport]:
        self._store.stage_candidate(self.experiment_id, version, tensors, order)
        agents = list(alive.values())
        agent_to_ue = {a: u for u, a in alive.items()}
        dataset = self.spec.dataset.model_dump(mode="json")
        tasks = {}
        for i, agent in enumerate(agents):
            task = self._base_task(state, "evaluate", agents)
            task.evaluate = EvalTask(
                model_version=version,
                shard_index=i,
                n_shards=len(agents),
                client_index=self._ue_ids.index(agent_to_ue[agent]),
                n_clients=len(self._ue_ids),
                dataset=dataset,
            )
            tasks[agent] = task
        got = self._stage(state, "evaluate", tasks, _EVAL_DEADLINE_S)
        out = {}
        for agent, body in got.items():
            try:
                out[agent_to_ue[agent]] = EvalReport.model_validate_json(body)
            except ValueError as err:
                log.warning("evaluation from %s rejected: %s", agent, err)
        return out

    def _commit(self, state: _RoundState, evals: dict[str, EvalReport]) -> None:
        allocation, reports, contributors = state.allocation, state.reports, state.contributors
        survivors, selected = list(state.weight_of), state.selected
        w = self.spec.weights
        total = sum(e.total for e in evals.values())
        accuracy = sum(e.correct for e in evals.values()) / total if total else None
        test_loss = sum(e.test_loss * e.total for e in evals.values()) / total if total else None
        train_losses = [e.train_loss for e in evals.values()]
        fairness = float(np.var(train_losses)) if train_losses else None
        latency = float(allocation["round_latency_s"])
        energy = float(sum(reports[u].energy_j for u in contributors))
        sum_latency = float(sum(allocation["latency_s"]))
        reward = (w.alpha * (accuracy or 0.0)) - w.beta * energy - w.gamma * sum_latency
        self._strategy.observe(reward)
        wall = time.time() - state.started
        train_wall = max((reports[u].train_s for u in survivors), default=0.0)
        state.details.update(
            selected=selected,
            survivors=survivors,
            contributors=contributors,
            losses={u: reports[u].loss for u in survivors},
            weights=state.weight_of,
            eval_coverage=total,
            train_s={u: reports[u].train_s for u in survivors},
            test_loss=test_loss,
        )
        path = self._store.commit_candidate(self.experiment_id, state.index + 1)
        with self._db.session() as s:
            exp = s.get(ExperimentRow, self.experiment_id)
            if exp is None or exp.next_round != state.index:
                raise RoundFailedError("the experiment moved on or was deleted during the round")
            s.add(
                RoundRow(
                    experiment_id=self.experiment_id,
                    index=state.index,
                    accuracy=accuracy,
                    loss=test_loss,
                    latency_s=latency,
                    energy_j=energy,
                    fairness_var=fairness,
                    dropouts=len(selected) - len(contributors),
                    overhead_s=max(0.0, wall - train_wall),
                    wall_s=wall,
                    reward=reward,
                    allocation=allocation,
                    details=state.details,
                )
            )
            exp.next_round = state.index + 1
            exp.model_version = state.index + 1
            exp.model_path = str(path)
        log.info(
            "experiment %s round %d: accuracy %s, %d/%d contributed, %.1f s",
            self.experiment_id,
            state.index,
            f"{accuracy:.4f}" if accuracy is not None else "n/a",
            len(contributors),
            len(selected),
            wall,
        )
