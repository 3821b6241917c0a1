"""The networked driver's wire side: round tasks for the agents and the parsing of their reports.

Nothing here decides anything about the round: the plan, the weights and the link outcome come
from the round core; these functions only put them into :class:`~protocol.rounds.Task` s and
read the agents' answers back, rejecting (and logging) what does not parse.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Mapping

from controller.round import ClientReport, RoundPlan
from protocol.rounds import (
    EvalReport,
    EvalTask,
    FedMarlTask,
    PrepareTask,
    Task,
    TrainReport,
    TrainTask,
)
from protocol.spec import ExperimentSpec

__all__ = [
    "base_task",
    "eval_tasks",
    "init_tasks",
    "parse_evals",
    "parse_train_reports",
    "train_tasks",
]

log = logging.getLogger(__name__)


def base_task(
    spec: ExperimentSpec,
    experiment_id: str,
    index: int,
    attempt: int,
    stage: str,
    clients: list[str],
) -> Task:
    """A task of ``stage`` for round ``index`` (attempt ``attempt``) with nothing stage-specific."""
    return Task(
        experiment_id=experiment_id,
        round=index,
        attempt=attempt,
        stage=stage,
        model_name=spec.model.name,
        seed=spec.seed,
        clients=clients,
    )


def _fedmarl(spec: ExperimentSpec, ue: str) -> FedMarlTask | None:
    """``ue``'s place in the Fed-MARL environment (None unless ``mode: fedmarl``)."""
    if spec.mode != "fedmarl":
        return None
    ues = spec.topology.ues
    return FedMarlTask(
        config=spec.fedmarl.model_dump(mode="json"),
        agent_index=[u.id for u in ues].index(ue),
        n_agents=len(ues),
        profiles=[u.profile for u in ues],
    )


def init_tasks(
    spec: ExperimentSpec, experiment_id: str, attempt: int, agents: Mapping[str, str]
) -> dict[str, Task]:
    """Agent id -> the ``init`` task of each UE's agent (``agents``: UE id -> agent id): send
    the initial model, and load the UE's local data for the rounds to come."""
    ue_order = [ue.id for ue in spec.topology.ues]
    clients = list(agents.values())
    tasks: dict[str, Task] = {}
    for ue, agent in agents.items():
        task = base_task(spec, experiment_id, -1, attempt, "init", clients)
        task.prepare = PrepareTask(
            client_index=ue_order.index(ue),
            n_clients=len(ue_order),
            dataset=spec.dataset.model_dump(mode="json"),
            seed=spec.seed,
        )
        task.fedmarl = _fedmarl(spec, ue)
        tasks[agent] = task
    return tasks


def train_tasks(
    spec: ExperimentSpec,
    experiment_id: str,
    attempt: int,
    plan: RoundPlan,
    agents: Mapping[str, str],
    version: int,
    fedprox_mu: float,
    setup: Mapping[str, bytes | None],
    evaluate: bool = False,
) -> dict[str, Task]:
    """Agent id -> the ``train`` task of each planned client (its P, B and f from the plan).

    With ``evaluate``, each task also asks for model ``version``'s score on one test shard per
    client (the previous round's evaluation, carried by this round's training).
    """
    ue_order = [ue.id for ue in spec.topology.ues]
    by_id = {ue.id: ue for ue in spec.topology.ues}
    selected = list(plan.ue_ids)
    alloc = plan.allocation
    tasks: dict[str, Task] = {}
    for i, ue in enumerate(selected):
        task = base_task(spec, experiment_id, plan.index, attempt, "train", selected)
        task.train = TrainTask(
            ue_id=ue,
            client_index=ue_order.index(ue),
            n_clients=len(ue_order),
            model_version=version,
            model_name=spec.model.name,
            dataset=spec.dataset.model_dump(mode="json"),
            seed=spec.seed,
            local_epochs=spec.fl.local_epochs,
            batch_size=spec.fl.batch_size,
            learning_rate=spec.fl.learning_rate,
            momentum=spec.fl.momentum,
            fedprox_mu=fedprox_mu,
            freq_hz=float(alloc.freq_hz[i]),
            power_w=float(alloc.power_w[i]),
            bandwidth_hz=float(alloc.bandwidth_hz[i]),
            comm_latency_s=float(alloc.comm_latency_s[i]),
            secure_aggregation=spec.secure_aggregation.enabled,
            profile=by_id[ue].profile,
        )
        blob = setup.get(ue)
        task.secagg = base64.b64encode(blob).decode() if blob is not None else None
        if evaluate:
            task.evaluate = _eval_task(spec, version, i, len(selected), ue_order.index(ue))
        task.fedmarl = _fedmarl(spec, ue)
        tasks[agents[ue]] = task
    return tasks


def _eval_task(
    spec: ExperimentSpec, version: int, shard: int, n_shards: int, client_index: int
) -> EvalTask:
    return EvalTask(
        model_version=version,
        shard_index=shard,
        n_shards=n_shards,
        client_index=client_index,
        n_clients=spec.n_ues,
        dataset=spec.dataset.model_dump(mode="json"),
    )


def parse_train_reports(
    got: Mapping[str, bytes], agent_to_ue: Mapping[str, str]
) -> tuple[dict[str, ClientReport], dict[str, bytes], dict[str, EvalReport]]:
    """The valid train reports by UE, their secure-aggregation adverts (decoded), and the
    evaluations they carry."""
    reports: dict[str, ClientReport] = {}
    adverts: dict[str, bytes] = {}
    evals: dict[str, EvalReport] = {}
    for agent, body in got.items():
        try:
            r = TrainReport.model_validate_json(body)
        except ValueError as err:
            log.warning("train report from %s rejected: %s", agent, err)
            continue
        if not math.isfinite(r.loss):
            log.warning("train report from %s rejected: non-finite loss", agent)
            continue
        ue = agent_to_ue[agent]
        reports[ue] = ClientReport(
            ue_id=ue,
            loss=r.loss,
            samples=r.samples,
            measured_train_s=r.train_s,
            freq_applied_hz=r.freq_applied_hz,
            measured_energy_j=r.measured_energy_j,
        )
        if r.secagg_advertise:
            adverts[ue] = base64.b64decode(r.secagg_advertise)
        if r.evaluation is not None:
            evals[ue] = r.evaluation
    return reports, adverts, evals


def eval_tasks(
    spec: ExperimentSpec,
    experiment_id: str,
    index: int,
    attempt: int,
    agents: Mapping[str, str],
    version: int,
) -> dict[str, Task]:
    """Agent id -> an ``evaluate`` task: model ``version`` on one test shard per live agent."""
    ue_order = [ue.id for ue in spec.topology.ues]
    agent_ids = list(agents.values())
    tasks = {}
    for i, (ue, agent) in enumerate(agents.items()):
        task = base_task(spec, experiment_id, index, attempt, "evaluate", agent_ids)
        task.evaluate = _eval_task(spec, version, i, len(agent_ids), ue_order.index(ue))
        task.fedmarl = _fedmarl(spec, ue)
        tasks[agent] = task
    return tasks


def parse_evals(got: Mapping[str, bytes], agent_to_ue: Mapping[str, str]) -> dict[str, EvalReport]:
    """The valid evaluation reports by UE."""
    out = {}
    for agent, body in got.items():
        try:
            out[agent_to_ue[agent]] = EvalReport.model_validate_json(body)
        except ValueError as err:
            log.warning("evaluation from %s rejected: %s", agent, err)
    return out
