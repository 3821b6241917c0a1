"""The networked round driver: the round core of DESIGN section 8 over the task board.

One experiment per thread. The driver does only I/O: it waits for agents, asks the CSI source
for the latest estimates and the air for the true channel, publishes the stages of a round on
the task board, parses what the agents send, and commits. Every decision (clients, allocation,
link outcome, weights, the update, the metrics and the reward) is a call to
:mod:`controller.round`.

A round: select; plan (CRA, CSM, MCS); ``train``; link (the radio decides which updates
arrive); weights over the arrived; the upload stages (secure aggregation: every reporter shares
keys, only arrived updates are masked and sent, the protocol recovers the sum without the
rest); the new model is staged as a candidate; record; the power policy learns from the reward
and is saved; the round, its plan, the model and the policy are committed in one transaction.

Evaluation costs no stage of its own: round ``t``'s candidate is what round ``t + 1`` trains
from, and its train tasks ask each client to score it on a test shard first (the loss before
training, which FAL needs anyway, is its loss on the client's data). Round ``t`` is committed,
with the accuracy of its model exactly as before, as soon as those reports are in; only after
the last round (or when the next round cannot carry it) does an ``evaluate`` stage run. A
consequence: the power policy observes round ``t``'s reward after round ``t + 1`` is planned.
A controller killed before round ``t``'s commit redoes round ``t``; nothing of an uncommitted
round survives. When fewer updates arrive than the aggregation needs, the round is committed
without a model update (the model and its accuracy carry over). Agents that crash or miss the
wall-clock stage deadline are crash dropouts; the radio's losses are link dropouts.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from controller import round as core
from controller.air import AirChannel, AirUnavailableError, BurstAir
from controller.algorithms import Algorithm
from controller.db import Database, ExperimentRow, RoundRow
from controller.engine import tasks as wire
from controller.engine.aggregation import (
    AggregationError,
    RoundAggregation,
    StreamedAggregation,
    plain_aggregation,
)
from controller.engine.board import StageConsumer, StageKey, TaskBoard
from controller.engine.liveness import AgentDirectory
from controller.events import EventLog
from controller.models_store import ModelStore
from controller.round import (
    Carry,
    ClientReport,
    LinkRequest,
    LinkResult,
    RoundPlan,
    RoundRecord,
)
from protocol import tensorfile
from protocol.arrays import NDArrayFloat
from protocol.rounds import EvalReport, Task
from protocol.spec import ExperimentSpec

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
    """What one attempt of a round has gathered so far (read by the REST routes)."""

    index: int
    attempt: int
    started: float = field(default_factory=time.time)
    details: dict[str, Any] = field(default_factory=dict)
    selected: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    """A round whose model is staged and whose evaluation rides on the next round's training."""

    state: _RoundState
    plan: RoundPlan
    reports: dict[str, ClientReport]
    link: LinkResult
    contributors: list[str]
    version: int
    #: When the round's own work ended (the next round starts then), Unix s.
    ended: float
    committed: bool = False


def _carry_from_row(row: RoundRow | None) -> Carry:
    """What the next round takes from the last committed one (restored from the database)."""
    if row is None:
        return Carry()
    return Carry(
        model_time_s=row.model_time_s,
        accuracy=row.accuracy,
        loss=row.loss,
        fairness_var=row.fairness_var,
        history=_history((row.details or {}).get("link_features", {})),
    )


def _history(features: dict[str, list[float]]) -> dict[str, NDArrayFloat]:
    """The power policy's link state per UE from its JSON form in a round's details."""
    return {u: np.asarray(v, dtype=np.float64) for u, v in features.items()}


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
        algorithm: Algorithm,
        air: AirChannel | None = None,
        policy_dir: Path | None = None,
        policy_source: str = "none",
        events: EventLog | None = None,
        csi_status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.experiment_id = experiment_id
        self._events = events
        self._csi_status = csi_status
        self._seen_alive: dict[str, str] = {}
        self.spec = spec
        self._db, self._store, self._board, self._agents = db, store, board, agents
        self._csi, self._aggregation, self._algorithm = csi, aggregation, algorithm
        self._air = air
        self._iq = spec.link.enabled and spec.link.mode == "iq"
        self._policy_dir = policy_dir
        self._policy_source = policy_source
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = np.random.default_rng(spec.seed)
        self._ue_ids = [ue.id for ue in spec.topology.ues]
        self._samples = dict.fromkeys(self._ue_ids, core.samples_guess(spec))
        self.current: _RoundState | None = None
        with db.session() as s:
            rounds = db.rounds(s, experiment_id)
            self._carry = _carry_from_row(rounds[-1] if rounds else None)

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
                self._emit("experiment_status", {"status": status, "error": error}, s)

    def _emit(self, kind: str, data: dict[str, Any], session: Any = None) -> None:
        """Publish an event of this experiment (nothing without an event log)."""
        if self._events is not None:
            self._events.publish(self.experiment_id, kind, data, session)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as err:  # the thread must record why it died
            log.exception("experiment %s failed", self.experiment_id)
            self._set_status("failed", f"{type(err).__name__}: {err}")

    def _loop(self) -> None:
        pending: _Pending | None = None
        while not self.stop_event.is_set():
            with self._db.session() as s:
                row = s.get(ExperimentRow, self.experiment_id)
                if row is None:
                    return
                next_round, version = row.next_round, row.model_version
            if pending is not None:  # its candidate is the next round's model
                next_round, version = pending.state.index + 1, pending.version
            if next_round >= self.spec.fl.rounds:
                self._set_status("completed")
                return
            if version < 0:
                self._initialise_model()
                continue
            try:
                pending = self._run_round(next_round, version, pending)
            except RoundFailedError as err:
                log.warning("round %d failed (%s); retrying", next_round, err)
                if pending is not None and not pending.committed:
                    self._settle(pending)
                pending = None
                self.stop_event.wait(1.0)
        self._board.idle(self._ue_ids)

    def _settle(self, pending: _Pending) -> None:
        """Commit a pending round with an ``evaluate`` stage of its own (the next round could
        not carry its evaluation); if even that fails, it is dropped and runs again."""
        try:
            alive = self._wait_for_agents(1, _ROUND_WAIT_S)
            evals = self._evaluate(pending.state, alive, pending.version)
            self._commit_pending(pending, evals)
        except RoundFailedError as err:
            log.warning("round %d dropped, to run again (%s)", pending.state.index, err)

    # -- helpers ----------------------------------------------------------------------------
    def _alive_agents(self) -> dict[str, str]:
        """UE id -> agent id for the UEs whose agent is alive."""
        profiles = {ue.id: ue.profile for ue in self.spec.topology.ues}
        alive = self._agents.assignment(self._ue_ids, profiles)
        for ue, agent in alive.items():
            if self._seen_alive.get(ue) != agent:
                self._emit("agent_up", {"agent": agent, "ue": ue})
        for ue, agent in self._seen_alive.items():
            if alive.get(ue) != agent:
                self._emit("agent_down", {"agent": agent, "ue": ue})
        self._seen_alive = dict(alive)
        return alive

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
        consume: StageConsumer | None = None,
    ) -> dict[str, bytes]:
        """Publish ``tasks`` (agent id -> task) and collect submissions until the deadline
        (with ``consume``: hand each to it on arrival; the result then holds empty markers)."""
        key = StageKey(self.experiment_id, state.index, state.attempt, stage)
        deadline = time.time() + deadline_s
        for task in tasks.values():
            task.deadline_unix = deadline
        facts: dict[str, Any] = {
            "round": state.index,
            "attempt": state.attempt,
            "stage": stage,
            "tasks": len(tasks),
        }
        if stage in _SECAGG_STAGES and self.spec.secure_aggregation.enabled:
            facts["threshold"] = self.spec.secagg_threshold
        self._emit("stage_opened", {**facts, "deadline_s": deadline_s})
        self._board.open_stage(key, tasks, consume)
        try:
            got = self._board.wait(key, deadline, self.stop_event)
        finally:
            self._board.close_stage(key)
        took = round(time.time() - (deadline - deadline_s), 3)
        self._emit("stage_closed", {**facts, "received": len(got), "duration_s": took})
        if self.stop_event.is_set():
            raise RoundFailedError("stopped")
        state.details.setdefault("stage_s", {})[stage] = took
        return got

    def _base_task(self, state: _RoundState, stage: str, clients: list[str]) -> Task:
        return wire.base_task(
            self.spec, self.experiment_id, state.index, state.attempt, stage, clients
        )

    # -- first round: the initial model -----------------------------------------------------
    def _initialise_model(self) -> None:
        alive = self._wait_for_agents(need=1, patience_s=_ENROL_WAIT_S)
        if not alive:
            return
        state = _RoundState(index=-1, attempt=int(time.time()))
        tasks = wire.init_tasks(self.spec, self.experiment_id, state.attempt, alive)
        init = _InitialModel(self._store.digest)
        self._stage(state, "init", tasks, _INIT_DEADLINE_S, consume=init.take)
        if init.model is None:
            raise RoundFailedError("no agent sent a usable initial model")
        if len(init.digests) > 1:
            log.warning(
                "agents sent %d different initial models; keeping %s's",
                len(init.digests),
                init.owner,
            )
        tensors, order = init.model
        path = self._store.save(self.experiment_id, 0, tensors, order)
        with self._db.session() as s:
            row = s.get(ExperimentRow, self.experiment_id)
            if row is not None:
                row.model_version, row.model_path = 0, str(path)

    # -- one round ----------------------------------------------------------------------------
    def _run_round(self, index: int, version: int, pending: _Pending | None) -> _Pending | None:
        """One attempt of round ``index`` from model ``version`` (``pending``'s candidate when
        given: that round is committed once this one's train reports carry its evaluation).
        Returns this round when it staged a candidate for the next round to evaluate."""
        spec, algorithm = self.spec, self._algorithm
        state = _RoundState(index=index, attempt=int(time.time() * 1000) % 2**31)
        self.current = state
        need = spec.secagg_threshold if spec.secure_aggregation.enabled else 1
        # Before the first round, wait for the agents to enrol; later, go with who is alive.
        alive = self._wait_for_agents(need, _ENROL_WAIT_S if index == 0 else _ROUND_WAIT_S)
        if len(alive) < need:
            raise RoundFailedError(f"{len(alive)} agents alive, {need} needed")
        state.selected = selected = core.select(algorithm, spec, index, list(alive), self._rng)
        self._emit("round_opened", {"round": index, "attempt": state.attempt, "selected": selected})
        tensors, order = self._store.load(
            self.experiment_id, version, candidate=pending is not None
        )
        dim = int(sum(int(np.prod(tensors[k].shape)) for k in order))
        gains, csi_info = self._csi(selected)
        state.details["csi"] = csi_info
        if self._csi_status is not None:
            self._emit("csi", {"round": index, **self._csi_status()})
        identities = {u: self._agents.public_key_raw(alive[u]) for u in selected}
        try:
            agg = self._aggregation(
                spec, self.experiment_id, state.attempt, selected, dim, identities
            )
        except AggregationError as err:
            raise RoundFailedError(str(err)) from None
        plan = core.plan(
            algorithm,
            spec,
            index=index,
            ue_ids=selected,
            gains=gains,
            samples=self._samples,
            # iq: the bytes that cross the PHY (a masked input is its frame), else the model's
            update_bits=8.0 * agg.upload_bytes if self._iq else 32.0 * dim,
            anchor_frame=_anchor_frame(csi_info),
            history=self._carry.history,
        )
        self._emit("plan", {"round": index, "attempt": state.attempt, **plan.to_record()})

        reports, evals = self._train(state, plan, alive, version, agg, pending is not None)
        if pending is not None:
            if not evals:  # agents that do not score in training: a stage of its own
                log.warning("round %d: no evaluation came with training", pending.state.index)
                evals = self._evaluate(pending.state, alive, version)
            self._commit_pending(pending, evals)
        if self._iq:  # the radio decides on the bytes: weights over who may send, then upload
            weight_of = core.weights(algorithm, reports, core.transmitters(plan, reports))
            air = _OverTheAir(self, state, plan, reports)
            delta_sum, contributors = self._aggregate(
                state, agg, alive, weight_of, list(reports), air.carry, need
            )
            link = air.result()
        else:
            link = self._link(state, plan, reports)
            weight_of = core.weights(algorithm, reports, link.arrived)
        self._emit("link", {"round": index, "attempt": state.attempt, **link.to_record()})
        # The next round's plan reads this round's link outcome before this round commits.
        state.details["link_features"] = {
            u: v.tolist() for u, v in core.link_features(link).items()
        }
        self._carry.history = _history(state.details["link_features"])
        state.details["weights"] = weight_of
        new_flat = None
        if not self._iq:
            delta_sum, contributors = None, []
            if len(link.arrived) >= need:
                delta_sum, contributors = self._aggregate(
                    state, agg, alive, weight_of, list(reports)
                )
        if delta_sum is not None:
            flat = tensorfile.flatten(tensors, order)
            new_flat = core.apply_update(flat, delta_sum, weight_of, contributors)
        else:
            log.warning(
                "round %d: %d of %d updates arrived, %d needed; committed without an update",
                index,
                len(link.arrived),
                len(selected),
                need,
            )
        if new_flat is not None:
            new_tensors = tensorfile.unflatten(new_flat, tensors, order)
            self._store.stage_candidate(self.experiment_id, version + 1, new_tensors, order)
            staged = _Pending(state, plan, reports, link, contributors, version + 1, time.time())
            if index + 1 < spec.fl.rounds:
                return staged  # the next round's training evaluates it
            evals = self._evaluate(state, alive, version + 1)
            self._commit_pending(staged, evals)
            return None
        if self._carry.accuracy is None:  # nothing to carry over yet: score the model as it is
            metrics = core.evaluation_metrics(self._evaluate(state, alive, version))
        else:
            metrics = (self._carry.accuracy, self._carry.loss, self._carry.fairness_var)
        self._finish(state, plan, reports, link, contributors, metrics, None, time.time())
        return None

    def _commit_pending(self, pending: _Pending, evals: dict[str, EvalReport]) -> None:
        """Record and commit a round whose model has now been scored."""
        if not evals:
            raise RoundFailedError(f"no evaluation of round {pending.state.index}'s model")
        p = pending
        metrics = core.evaluation_metrics(evals)
        p.state.details["evaluated_by"] = sorted(evals)
        marl = core.fedmarl_metrics(evals)
        if marl:
            p.state.details["model_fedmarl"] = marl
        self._finish(
            p.state, p.plan, p.reports, p.link, p.contributors, metrics, p.version, p.ended
        )
        p.committed = True

    def _finish(
        self,
        state: _RoundState,
        plan: RoundPlan,
        reports: dict[str, ClientReport],
        link: LinkResult,
        contributors: list[str],
        metrics: tuple[float | None, float | None, float | None],
        new_version: int | None,
        ended: float,
    ) -> None:
        """Record the round, let the policy learn from its reward, commit."""
        spec, algorithm = self.spec, self._algorithm
        updated = new_version is not None
        rec = core.record(
            spec,
            plan,
            reports,
            link,
            contributors,
            accuracy=metrics[0],
            loss=metrics[1],
            fairness_var=metrics[2],
            previous_model_time_s=self._carry.model_time_s,
            updated=updated,
        )
        algorithm.observe(rec.reward)
        state.details.update(
            selected=state.selected,
            survivors=list(reports),
            contributors=contributors,
            losses={u: r.loss for u, r in reports.items()},
            train_s={u: r.measured_train_s for u, r in reports.items()},
            link=link.to_record(),
            policy_source=self._policy_source,
        )
        self._commit(state, plan, rec, reports, new_version, ended)

    def _train(
        self,
        state: _RoundState,
        plan: RoundPlan,
        alive: dict[str, str],
        version: int,
        agg: RoundAggregation,
        evaluate: bool = False,
    ) -> tuple[dict[str, ClientReport], dict[str, EvalReport]]:
        """The ``train`` stage: the valid reports of clients whose key adverts were accepted,
        and (with ``evaluate``) their scores of model ``version`` on their test shards."""
        tasks = wire.train_tasks(
            self.spec,
            self.experiment_id,
            state.attempt,
            plan,
            alive,
            version,
            float(self._algorithm.fedprox_mu),
            agg.setup_inputs(),
            evaluate=evaluate,
        )
        got = self._stage(state, "train", tasks, self.spec.fl.round_deadline_s)
        reports, adverts, evals = wire.parse_train_reports(got, {a: u for u, a in alive.items()})
        try:
            bad = set(agg.receive_setup(adverts))
        except AggregationError as err:
            raise RoundFailedError(f"advertise keys: {err}") from None
        for ue, r in reports.items():
            self._samples[ue] = r.samples
        return {u: r for u, r in reports.items() if u not in bad}, evals

    def _truth(
        self, state: _RoundState, plan: RoundPlan, reports: dict[str, ClientReport]
    ) -> tuple[LinkRequest | None, NDArrayFloat | None]:
        """The attempts of the reporters and the air's true gain at each (None, None: no
        link layer, or no air to ask)."""
        request = core.link_request(plan, reports)
        if request is None:
            return None, None
        if self._air is None:
            state.details["link_skipped"] = "no radio: the controller has no CSI or air endpoint"
            return None, None
        ids = [u for u in plan.ue_ids if u in reports]
        try:
            return request, self._air.true_gains(ids, request.frames)
        except AirUnavailableError as err:
            raise RoundFailedError(f"the air did not answer: {err}") from None

    def _link(
        self, state: _RoundState, plan: RoundPlan, reports: dict[str, ClientReport]
    ) -> LinkResult:
        """The link step: the true channel from the air, then the round core's outcome."""
        request, truth = self._truth(state, plan, reports)
        return core.resolve_link(self.spec, plan, reports, request, truth)

    def _aggregate(
        self,
        state: _RoundState,
        agg: RoundAggregation,
        alive: dict[str, str],
        weight_of: dict[str, float],
        reporters: list[str],
        over_air: Callable[[dict[str, bytes]], dict[str, bytes]] | None = None,
        need: int = 1,
    ) -> tuple[NDArrayFloat | None, list[str]]:
        """Run the upload stages; the sum of the weighted updates (``[dim]``) and its members.

        Every reporter takes part in the key stages; only the clients in ``weight_of`` send
        their (masked) update. Without ``over_air`` those are the ones whose updates the link
        layer says arrived. With it (``link.mode: iq``) they are all that may send, and the
        update stage's uploads (UE -> bytes) go through ``over_air`` first, which returns the
        bytes that decoded; fewer than ``need`` of them end the round without a sum (None).
        """
        agent_to_ue = {alive[u]: u for u in reporters}
        streamed = agg if isinstance(agg, StreamedAggregation) else None
        for stage in agg.stages:
            carries_update = stage in _UPDATE_STAGES
            tasks = {}
            for ue, blob in agg.inputs(stage).items():
                if ue not in (weight_of if carries_update else reporters):
                    continue
                task = self._base_task(state, stage, reporters)
                task.weight = weight_of.get(ue, 0.0)
                task.secagg = base64.b64encode(blob).decode() if blob is not None else None
                tasks[alive[ue]] = task
            through_air = carries_update and over_air is not None
            consume = None
            if streamed is not None and streamed.streams(stage) and not through_air:
                consume = _taker(streamed, stage, agent_to_ue)
            got = self._stage(state, stage, tasks, self.spec.fl.round_deadline_s, consume)
            uploads = {agent_to_ue[a]: b for a, b in got.items()}
            if through_air and over_air is not None:
                uploads = over_air(uploads)
                if len(uploads) < need:
                    return None, []
            try:
                rejected = agg.receive(stage, uploads)
            except AggregationError as err:
                raise RoundFailedError(f"{stage}: {err}") from None
            state.details.setdefault("rejected", {})[stage] = rejected
        try:
            return agg.result()
        except AggregationError as err:
            raise RoundFailedError(str(err)) from None

    def _evaluate(
        self, state: _RoundState, alive: dict[str, str], version: int
    ) -> dict[str, EvalReport]:
        """Every live agent scores model ``version`` (committed, or the staged candidate)."""
        tasks = wire.eval_tasks(
            self.spec, self.experiment_id, state.index, state.attempt, alive, version
        )
        got = self._stage(state, "evaluate", tasks, _EVAL_DEADLINE_S)
        return wire.parse_evals(got, {a: u for u, a in alive.items()})

    def _save_policy(self, index: int) -> str | None:
        """The power policy after round ``index``, written beside the models (None: no policy)."""
        if self._policy_dir is None or self._algorithm.policy is None:
            return None
        path = self._policy_dir / self.experiment_id / f"policy-round{index:05d}.pt"
        saved = self._algorithm.save_policy(path)
        return str(saved) if saved is not None else None

    def _commit(
        self,
        state: _RoundState,
        plan: RoundPlan,
        rec: RoundRecord,
        reports: dict[str, ClientReport],
        new_version: int | None,
        ended: float,
    ) -> None:
        """Commit the round; ``new_version``: the model version it made (None: no update);
        ``ended``: when its own work ended (its wall time runs from its start to then)."""
        wall = ended - state.started
        slowest = max((r.measured_train_s for r in reports.values()), default=0.0)
        policy_path = self._save_policy(state.index)
        model_path = (
            None
            if new_version is None
            else self._store.commit_candidate(self.experiment_id, new_version)
        )
        if model_path is not None:  # what the round made, to check the file against later
            state.details["model_version"] = new_version
            state.details["model_sha256"] = self._store.digest(model_path.read_bytes())
        with self._db.session() as s:
            exp = s.get(ExperimentRow, self.experiment_id)
            if exp is None or exp.next_round != state.index:
                raise RoundFailedError("the experiment moved on or was deleted during the round")
            s.add(
                RoundRow(
                    experiment_id=self.experiment_id,
                    index=rec.index,
                    accuracy=rec.accuracy,
                    loss=rec.loss,
                    fairness_var=rec.fairness_var,
                    model_latency_s=rec.model_latency_s,
                    model_energy_j=rec.model_energy_j,
                    model_time_s=rec.model_time_s,
                    mean_mcs_index=rec.mean_mcs_index,
                    measured_train_s=rec.measured_train_s,
                    measured_energy_j=rec.measured_energy_j,
                    overhead_s=max(0.0, wall - slowest),
                    wall_s=wall,
                    link_dropouts=rec.link_dropouts,
                    crash_dropouts=rec.crash_dropouts,
                    updated=rec.updated,
                    reward=rec.reward,
                    allocation=plan.to_record(),
                    details=state.details,
                )
            )
            exp.next_round = state.index + 1
            self._emit("round_committed", _committed(rec, wall, new_version is not None), s)
            if new_version is not None:
                exp.model_version = new_version
                exp.model_path = str(model_path)
            if policy_path is not None:
                exp.policy_path = policy_path
        self._carry = Carry(
            model_time_s=rec.model_time_s,
            accuracy=rec.accuracy,
            loss=rec.loss,
            fairness_var=rec.fairness_var,
            history=_history(state.details["link_features"]),
        )
        log.info(
            "experiment %s round %d: accuracy %s, %d/%d arrived, %d link + %d crash dropouts, "
            "%.1f s",
            self.experiment_id,
            state.index,
            f"{rec.accuracy:.4f}" if rec.accuracy is not None else "n/a",
            len(state.details.get("contributors", [])),
            len(plan.ue_ids),
            rec.link_dropouts,
            rec.crash_dropouts,
            wall,
        )


#: Upload stages that carry a client's (masked) update: only arrived updates are sent.
_UPDATE_STAGES = ("masked_input", "upload")
#: The secure-aggregation protocol's stages (their events carry its threshold).
_SECAGG_STAGES = ("train", "share_keys", "masked_input", "unmask")


def _committed(rec: RoundRecord, wall_s: float, updated: bool) -> dict[str, Any]:
    """The ``round_committed`` event: the round's metrics row (modelled ``model_*``, measured
    ``measured_*`` and ``wall_s``), as metrics.csv has it."""
    return {
        "round": rec.index,
        "accuracy": rec.accuracy,
        "loss": rec.loss,
        "fairness_var": rec.fairness_var,
        "model_latency_s": rec.model_latency_s,
        "model_energy_j": rec.model_energy_j,
        "model_time_s": rec.model_time_s,
        "mean_mcs_index": rec.mean_mcs_index,
        "measured_train_s": rec.measured_train_s,
        "wall_s": wall_s,
        "link_dropouts": rec.link_dropouts,
        "crash_dropouts": rec.crash_dropouts,
        "updated": updated,
        "reward": rec.reward,
    }


class _OverTheAir:
    """``link.mode: iq``: the update stage's uploads through the air's PHY (one round).

    :meth:`carry` asks the air for the true channel of every attempt, sends each upload's
    bytes through :meth:`controller.air.BurstAir.carry` (the round core's HARQ) and keeps the
    link's outcome for :meth:`result`; what it returns is what decoded.
    """

    def __init__(
        self,
        engine: RoundEngine,
        state: _RoundState,
        plan: RoundPlan,
        reports: dict[str, ClientReport],
    ) -> None:
        self._engine, self._state, self._plan, self._reports = engine, state, plan, reports
        self._link: LinkResult | None = None

    def carry(self, uploads: dict[str, bytes]) -> dict[str, bytes]:
        engine, state = self._engine, self._state
        air = engine._air
        if not isinstance(air, BurstAir):
            raise RoundFailedError("link.mode iq: the controller has no air that carries bursts")
        request, truth = engine._truth(state, self._plan, self._reports)
        if request is None or truth is None:
            raise RoundFailedError("link.mode iq: no true channel to send the bytes through")
        started = time.perf_counter()
        try:
            self._link, decoded = core.carry_updates(
                engine.spec, self._plan, self._reports, request, truth, uploads, air.carry
            )
        except AirUnavailableError as err:
            raise RoundFailedError(f"the air did not carry the updates: {err}") from None
        state.details["measured_phy_s"] = round(time.perf_counter() - started, 3)
        return decoded

    def result(self) -> LinkResult:
        """The link's outcome; the round core's with no radio if nothing was uploaded."""
        if self._link is None:  # no update stage ran (or it had no uploads)
            self._link = core.resolve_link(self._engine.spec, self._plan, self._reports, None, None)
        return self._link


def _taker(agg: StreamedAggregation, stage: str, agent_to_ue: dict[str, str]) -> StageConsumer:
    """The board's consumer of ``stage``: each agent's upload goes to ``agg`` under its UE id."""

    def take(agent: str, body: bytes) -> str | None:
        return agg.take(stage, agent_to_ue[agent], body)

    return take


@dataclass
class _InitialModel:
    """The ``init`` stage's uploads, taken as they arrive (not kept until the stage closes):
    the first that decodes, with its sender, and the digests of all (every agent builds the
    same model from the experiment seed, so they should agree)."""

    digest: Callable[[bytes], str]
    model: tuple[dict[str, np.ndarray], list[str]] | None = None
    owner: str | None = None
    digests: set[str] = field(default_factory=set)

    def take(self, agent: str, blob: bytes) -> str | None:
        """Keep ``blob`` if it is the first usable model; None, or why it is refused."""
        if not blob:
            return "empty initial model"
        self.digests.add(self.digest(blob))
        if self.model is not None:
            return None
        try:
            tensors, order, _ = tensorfile.decode(blob)
        except tensorfile.TensorFileError as err:
            log.warning("initial model from %s rejected: %s", agent, err)
            return f"not a model file: {err}"
        self.model, self.owner = (tensors, order), agent
        return None


def _anchor_frame(csi_info: dict[str, Any]) -> int:
    """The newest frame among the APs' CSI the plan used (-1: none)."""
    frames = [int(f) for f in (csi_info.get("frames") or {}).values() if f is not None]
    return max(frames, default=-1)
