"""The in-process driver of the round core (DESIGN section 8): virtual clients, no network.

It runs the same calls of :mod:`controller.round` as the networked engine
(``controller.engine.round_engine``), in the same order and with the same inputs, so given a
spec, a seed and the same CSI both drivers select the same clients and make the same plans,
MCS choices and link outcomes:

1. select among the UEs (every virtual client is alive) with the engine's generator;
2. plan from the radio's CSI (:mod:`simulator.radio`), with the samples each UE reported when
   it last trained (the engine's guess before), and the link history of the last round;
3. "train": each selected client's report: its loss before training (FAL's ``L_u``, also the
   previous round's evaluation, as the agents score it), its samples and the frequency its
   profile's DVFS applies to the planned ``f``;
4. link: the radio's true gains at the attempts the core asks for;
5. weights over the arrived updates;
6. aggregate: the arrived clients train (batched, :mod:`simulator.training`) and their
   weighted updates are summed per shard, or masked and summed by the real protocol
   (:mod:`simulator.secure`); the clients whose updates the radio lost do not train, since
   their updates would be discarded (the networked agents train them, then drop them);
7. record, with the accuracy of the round's model scored when the next round's clients report
   (on the whole test set, which the engine's test shards cover) and the power policy's reward
   observed after the next round is planned, as in the engine.

In ``mode: fedmarl`` the model is the agents' DRQN (:mod:`simulator.marl`): every selected
agent learns in step 3 (its report's loss is its TD loss; a learner's round cannot be
skipped), step 6 sums the changes they learnt, and step 7 scores the candidate by playing it
in the agents' world (the pooled task success rate as ``accuracy``, ``details.model_fedmarl``),
as the networked engine does.

Measured times are the simulator's own wall clock (``measured_train_s``: the round's batched
training of all its clients together, not one board's); modelled numbers come from the same
system model and link layer.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller import round as core
from controller.algorithms import Algorithm, make_algorithm
from controller.engine.aggregation import AggregationError
from controller.round import Carry, ClientReport, LinkResult, RoundPlan
from edge_agent.data import load_dataset
from edge_agent.dvfs.base import round_up_to_level
from edge_agent.marl import eval_report
from edge_agent.models import build_model, parameters_to_vector
from protocol.arrays import NDArrayFloat
from protocol.spec import ExperimentSpec
from simulator.backends import Backend
from simulator.clients import dataset_dir
from simulator.marl import MarlBackend
from simulator.radio import Radio
from simulator.secure import secure_sum
from simulator.training import BatchedTrainer, SGDConfig

__all__ = ["PHASES", "SimDriver"]

log = logging.getLogger(__name__)

#: The measured time split of a round (``details["sim_s"]``), s.
PHASES = ("plan", "score", "link", "train", "aggregate", "evaluate")


#: (accuracy, loss, fairness variance) of a round's model; None where unknown.
_Metrics = tuple[float | None, float | None, float | None]


@dataclass
class _Pending:
    """A round whose new model is scored when the next round's clients report."""

    index: int
    plan: RoundPlan
    reports: dict[str, ClientReport]
    link: LinkResult
    contributors: list[str]
    details: dict[str, Any]
    started: float
    ended: float


class SimDriver:
    """Runs one experiment's rounds with virtual clients.

    Args:
        spec: the experiment.
        backend: where the clients train (:mod:`simulator.backends`).
        radio: CSI and true channel (:mod:`simulator.radio`).
        experiment_id: names the run (the secure-aggregation rounds are bound to it).
        data_dir: the datasets' folder (the test set is read from it).
        on_round: called with each committed round's record (progress bars).
    """

    def __init__(
        self,
        spec: ExperimentSpec,
        *,
        backend: Backend,
        radio: Radio,
        experiment_id: str,
        data_dir: str | None = None,
        on_round: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.spec = spec
        self.experiment_id = experiment_id
        self._backend, self._radio, self._on_round = backend, radio, on_round
        self.algorithm: Algorithm = _make_algorithm(spec)
        self._rng = np.random.default_rng(spec.seed)
        self._ue_ids = [ue.id for ue in spec.topology.ues]
        self._pos = {u: i for i, u in enumerate(self._ue_ids)}
        # as the engine: a guess until each UE has reported its own
        self._samples = dict.fromkeys(self._ue_ids, core.samples_guess(spec))
        self._true_samples = {self._ue_ids[i]: n for i, n in backend.samples().items()}
        self._levels = {ue.id: sorted(spec.profile(ue).f_levels_hz) for ue in spec.topology.ues}
        self._carry = Carry()
        self._clock_s = 0.0  # modelled time at the start of the next round (the radio's clock)
        self._need = spec.secagg_threshold if spec.secure_aggregation.enabled else 1
        self.secure = (
            spec.secure_aggregation.enabled
            and spec.clients_per_round <= spec.engine.secagg_max_clients
        )
        self._keys: dict[str, Ed25519PrivateKey] = {}
        # mode fedmarl: the model is the agents' DRQN, and they score it in their world
        self._marl = backend if isinstance(backend, MarlBackend) else None
        self._version = 0  # the model's version, numbered as the engine's model store does
        self.rounds: list[dict[str, Any]] = []
        if self._marl is not None:
            self.model: npt.NDArray[np.float32] = self._marl.initial
            self.dim = int(self.model.size)
            return
        model = build_model(spec.model.name, seed=spec.seed)  # the agents' initial model
        self.model = parameters_to_vector(model)
        self.dim = int(self.model.size)
        test = load_dataset(spec.dataset.name, "test", data_dir=dataset_dir(spec.dataset, data_dir))
        self._test_x = torch.from_numpy(test.x)
        self._test_y = torch.from_numpy(test.y.astype(np.int64))
        self._scorer = BatchedTrainer(spec.model.name, workers=len(os.sched_getaffinity(0)))

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Every round of the spec; the committed records (the REST API's round form)."""
        pending: _Pending | None = None
        for index in range(self.spec.fl.rounds):
            pending = self._round(index, pending)
        return self.rounds

    def _sgd(self, index: int) -> SGDConfig:
        fl = self.spec.fl
        return SGDConfig(
            epochs=fl.local_epochs,
            batch_size=fl.batch_size,
            lr=fl.learning_rate,
            momentum=fl.momentum,
            fedprox_mu=float(self.algorithm.fedprox_mu),
            seed=self.spec.seed * 100003 + index,  # the agent's mini-batch order
        )

    def _round(self, index: int, pending: _Pending | None) -> _Pending | None:
        spec, algorithm = self.spec, self.algorithm
        started = time.time()
        split = dict.fromkeys(PHASES, 0.0)
        details: dict[str, Any] = {"engine": "sim", "backend": self._backend.name}
        tick = time.perf_counter()

        def lap(phase: str) -> None:
            nonlocal tick
            now = time.perf_counter()
            split[phase] += now - tick
            tick = now

        selected = core.select(algorithm, spec, index, list(self._ue_ids), self._rng)
        gains, csi_info = self._radio.csi(index, self._clock_s, selected)
        details["csi"] = csi_info
        plan = core.plan(
            algorithm,
            spec,
            index=index,
            ue_ids=selected,
            gains=gains,
            samples=self._samples,
            update_bits=32.0 * self.dim,
            anchor_frame=max(csi_info.get("frames", {}).values(), default=-1),
            history=self._carry.history,
        )
        lap("plan")
        if self._marl is not None:
            self._marl.begin_round(index)
        handle = self._backend.publish(self.model)
        losses = self._backend.score(handle, [self._pos[u] for u in selected])
        reports = {
            u: self._report(u, i, plan, losses[self._pos[u]]) for i, u in enumerate(selected)
        }
        self._samples.update({u: r.samples for u, r in reports.items()})
        lap("score")
        if pending is not None:  # this round's reports carry the evaluation of its model
            train_losses = [r.loss for r in reports.values()]
            self._commit(pending, self._evaluation(list(reports), train_losses, pending.details))
            lap("evaluate")
        link = self._link(plan, reports)
        self._clock_s += core.model_round_latency(plan, link)
        features = {u: v.tolist() for u, v in core.link_features(link).items()}
        details["link_features"] = features
        self._carry.history = {u: np.asarray(v) for u, v in features.items()}
        weight_of = core.weights(algorithm, reports, link.arrived)
        details["weights"] = weight_of
        lap("link")
        new_flat = None
        contributors: list[str] = []
        if len(link.arrived) >= self._need:
            delta_sum, contributors, measured = self._aggregate(
                index, handle, list(reports), weight_of, details, lap
            )
            if self._marl is None:  # the round's batched training, all clients together
                for u in contributors:
                    reports[u] = replace(reports[u], measured_train_s=measured)
            if contributors:
                new_flat = core.apply_update(self.model, delta_sum, weight_of, contributors)
        else:
            log.warning(
                "round %d: %d of %d updates arrived, %d needed; committed without an update",
                index,
                len(link.arrived),
                len(selected),
                self._need,
            )
        details["sim_s"] = split
        if new_flat is not None:
            self.model = new_flat
            self._version += 1
            ended = time.time()
            staged = _Pending(index, plan, reports, link, contributors, details, started, ended)
            if index + 1 < spec.fl.rounds:
                return staged
            self._commit(staged, self._evaluate_all(details))
            return None
        if self._carry.accuracy is None:
            metrics = self._evaluate_all(details)
        else:
            metrics = (self._carry.accuracy, self._carry.loss, self._carry.fairness_var)
        empty = _Pending(index, plan, reports, link, contributors, details, started, time.time())
        self._commit(empty, metrics, updated=False)
        return None

    # -- steps --------------------------------------------------------------------------------
    def _report(self, ue: str, i: int, plan: RoundPlan, loss: float) -> ClientReport:
        """What client ``ue`` (plan position ``i``) reports after its ``train`` task."""
        f = round_up_to_level(float(plan.allocation.freq_hz[i]), self._levels[ue])
        return ClientReport(
            ue_id=ue,
            loss=float(loss),
            samples=self._true_samples[ue],
            # mode fedmarl: the agent's own learning, measured as it learnt (score)
            measured_train_s=0.0 if self._marl is None else self._marl.seconds[self._pos[ue]],
            freq_applied_hz=f,
        )

    def _link(self, plan: RoundPlan, reports: dict[str, ClientReport]) -> LinkResult:
        request = core.link_request(plan, reports)
        truth = None
        if request is not None:
            ids = [u for u in plan.ue_ids if u in reports]
            truth = self._radio.true_gains(ids, request.frames)
        return core.resolve_link(self.spec, plan, reports, request, truth)

    def _aggregate(
        self,
        index: int,
        handle: Any,
        reporters: list[str],
        weight_of: dict[str, float],
        details: dict[str, Any],
        lap: Callable[[str], None],
    ) -> tuple[NDArrayFloat, list[str], float]:
        """Train the arrived clients and sum their weighted updates; (sum, members, train s)."""
        arrived = list(weight_of)
        members = [self._pos[u] for u in arrived]
        cfg = self._sgd(index)
        start = time.perf_counter()
        if not self.secure:
            total = self._backend.train_sum(handle, members, [weight_of[u] for u in arrived], cfg)
            measured = time.perf_counter() - start
            lap("train")
            return total, arrived, measured
        deltas = self._backend.train_each(handle, members, cfg)
        measured = time.perf_counter() - start
        lap("train")
        for u in reporters:
            if u not in self._keys:
                self._keys[u] = Ed25519PrivateKey.generate()
        try:
            total, contributors, cost = secure_sum(
                self.spec,
                self.experiment_id,
                index,
                reporters,
                weight_of,
                {u: deltas[self._pos[u]] for u in arrived},
                self._keys,
                seed=self.spec.seed,
            )
        except AggregationError as err:
            log.warning("round %d: secure aggregation failed: %s", index, err)
            details["secagg_error"] = str(err)
            lap("aggregate")
            return np.zeros(self.dim), [], measured
        details["secagg"] = {
            "clients": cost.clients,
            "contributors": cost.contributors,
            "measured_s": round(cost.measured_s, 4),
            "uplink_bytes": cost.uplink_bytes,
            "downlink_bytes": cost.downlink_bytes,
        }
        lap("aggregate")
        return total, contributors, measured

    def _metrics(self, train_losses: Sequence[float]) -> _Metrics:
        """Accuracy and loss of the current model on the test set, and the variance of the
        evaluating clients' local losses (``_eval_metrics`` of the engine)."""
        hits, loss_sum = self._scorer.correct(self.model, self._test_x, self._test_y)
        n = int(self._test_y.shape[0])
        var = float(np.var(train_losses)) if len(train_losses) else None
        return hits / n, loss_sum / n, var

    def _evaluation(
        self, evaluators: Sequence[str], train_losses: Sequence[float], details: dict[str, Any]
    ) -> _Metrics:
        """The current model scored as the ``evaluators`` score it. FL: the test set and the
        evaluators' losses before training (``train_losses``); ``mode: fedmarl``: every
        evaluator's agent plays it in its world, and ``details`` gets the pooled
        ``model_fedmarl`` figures, as the engine's."""
        if self._marl is None:
            return self._metrics(train_losses)
        got = self._marl.evaluate(self.model, self._version, [self._pos[u] for u in evaluators])
        evals = {self._ue_ids[i]: eval_report(g) for i, g in got.items()}
        details["evaluated_by"] = sorted(evals)
        details["model_fedmarl"] = core.fedmarl_metrics(evals)
        return core.evaluation_metrics(evals)

    def _evaluate_all(self, details: dict[str, Any]) -> _Metrics:
        """The engine's ``evaluate`` stage: every UE scores the current model."""
        if self._marl is not None:
            return self._evaluation(self._ue_ids, [], details)
        handle = self._backend.publish(self.model)
        losses = self._backend.score(handle, list(range(len(self._ue_ids))))
        return self._metrics(list(losses.values()))

    def _commit(
        self,
        p: _Pending,
        metrics: _Metrics,
        *,
        updated: bool = True,
    ) -> None:
        """Record the round, let the power policy learn from its reward, keep it."""
        rec = core.record(
            self.spec,
            p.plan,
            p.reports,
            p.link,
            p.contributors,
            accuracy=metrics[0],
            loss=metrics[1],
            fairness_var=metrics[2],
            previous_model_time_s=self._carry.model_time_s,
            updated=updated,
        )
        self.algorithm.observe(rec.reward)
        p.details.update(
            selected=list(p.plan.ue_ids),
            survivors=list(p.reports),
            contributors=p.contributors,
            losses={u: r.loss for u, r in p.reports.items()},
            link=p.link.to_record(),
        )
        wall = p.ended - p.started
        slowest = max((r.measured_train_s for r in p.reports.values()), default=0.0)
        row = {
            **asdict(rec),  # the REST API's round fields, as the engine commits them
            "overhead_s": max(0.0, wall - slowest),
            "wall_s": wall,
            "allocation": p.plan.to_record(),
            "details": p.details,
        }
        self.rounds.append(row)
        self._carry = Carry(
            model_time_s=rec.model_time_s,
            accuracy=rec.accuracy,
            loss=rec.loss,
            fairness_var=rec.fairness_var,
            history=self._carry.history,
        )
        if self._on_round is not None:
            self._on_round(row)


def _make_algorithm(spec: ExperimentSpec) -> Algorithm:
    """The experiment's algorithm, as the controller makes it (a fresh or the spec's policy)."""
    from controller.policy import policy_path

    start = spec.algorithm.policy
    return make_algorithm(
        spec.algorithm,
        spec.weights,
        seed=spec.seed,
        policy_path=policy_path(start) if start is not None else None,
    )
