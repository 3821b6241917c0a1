"""Flower's simulation engine on the simulator's workload, for ``testbed bench scale --vs flower``.

The same model (the agents' CNN), the same data partition (``simulator.clients.partition``),
the same clients per round (all UEs), the same local training (the agents' own
:func:`edge_agent.training.local_train`, scoring the global model on the local data first, as
an agent does), FedAvg weighted by samples, with no resource allocation and no link layer,
and the new model scored on the test set each round, as the simulator scores it (Flower's
centralised ``evaluate``, with the agents' :func:`edge_agent.training.evaluate`). Flower
(``flwr``, its Ray backend, one CPU per virtual client) runs one ``fit`` per client per
round. A round's time is measured inside Flower's server, from the strategy's
``configure_fit`` to the end of its centralised ``evaluate`` (its start-up and Ray's are not
counted).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from protocol.spec import ExperimentSpec

__all__ = ["flower_round_seconds"]

#: Per Ray worker process: (spec JSON, partition) -> the normalised local data of each client.
_DATA: dict[str, Any] = {}


def _client_data(spec_json: str, partition_id: int) -> Any:
    """One client's local data, loading the partition once per worker process."""
    from edge_agent.data import load_dataset
    from simulator.clients import dataset_dir, partition

    if _DATA.get("key") != spec_json:
        spec = ExperimentSpec.model_validate_json(spec_json)
        _DATA.clear()
        _DATA.update(key=spec_json, spec=spec, parts=partition(spec), cache={})
    cache = _DATA["cache"]
    if partition_id not in cache:
        spec = _DATA["spec"]
        cache[partition_id] = load_dataset(
            spec.dataset.name,
            "train",
            data_dir=dataset_dir(spec.dataset),
            indices=_DATA["parts"][partition_id],
        )
    return cache[partition_id]


def flower_round_seconds(spec: ExperimentSpec, *, rounds: int) -> list[float]:
    """Run ``rounds`` FedAvg rounds of ``spec`` on Flower's simulation engine; each round's
    wall time, s (measured)."""
    import torch
    from flwr.client import ClientApp, NumPyClient
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    from edge_agent.data import load_dataset
    from edge_agent.models import build_model, parameters_to_vector, vector_to_parameters
    from edge_agent.training import evaluate
    from simulator.clients import dataset_dir

    spec_json = spec.model_dump_json()
    fl = spec.fl
    n = spec.n_ues
    w0 = parameters_to_vector(build_model(spec.model.name, seed=spec.seed))
    marks: list[tuple[str, float]] = []
    test = load_dataset(spec.dataset.name, "test", data_dir=dataset_dir(spec.dataset))
    scorer = build_model(spec.model.name, seed=spec.seed)

    class Client(NumPyClient):
        def __init__(self, partition_id: int) -> None:
            self.partition_id = partition_id

        def fit(self, parameters: list[Any], config: dict[str, Any]) -> Any:
            from edge_agent.training import local_train

            torch.set_num_threads(1)
            data = _client_data(spec_json, self.partition_id)
            result = local_train(
                build_model(spec.model.name, seed=spec.seed),
                data.x,
                data.y,
                epochs=fl.local_epochs,
                batch_size=fl.batch_size,
                lr=fl.learning_rate,
                momentum=fl.momentum,
                global_vector=parameters[0],
                seed=spec.seed * 100003 + int(config.get("round", 0)),
            )
            local = parameters[0] + result.delta
            return [local], result.samples, {"loss": float(result.loss_before)}

    def client_fn(context: Context) -> Any:
        return Client(int(context.node_config["partition-id"])).to_client()

    class TimedFedAvg(FedAvg):
        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            marks.append(("start", time.perf_counter()))
            return super().configure_fit(server_round, parameters, client_manager)

        def evaluate(self, server_round: int, parameters: Any) -> Any:
            """The new model on the test set (the simulator's ``evaluate`` phase)."""
            from flwr.common import parameters_to_ndarrays

            vector_to_parameters(parameters_to_ndarrays(parameters)[0], scorer)
            accuracy, loss = evaluate(scorer, test.x, test.y)
            if server_round > 0:  # round 0 scores the initial model, before any fit
                marks.append(("end", time.perf_counter()))
            return loss, {"accuracy": accuracy}

    def server_fn(context: Context) -> ServerAppComponents:
        strategy = TimedFedAvg(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=n,
            min_available_clients=n,
            initial_parameters=ndarrays_to_parameters([w0]),
            on_fit_config_fn=lambda r: {"round": r - 1},
        )
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

    logging.getLogger("flwr").setLevel(logging.WARNING)
    run_simulation(
        server_app=ServerApp(server_fn=server_fn),
        client_app=ClientApp(client_fn=client_fn),
        num_supernodes=n,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": len(os.sched_getaffinity(0)), "include_dashboard": False},
        },
    )
    starts = [t for k, t in marks if k == "start"]
    ends = [t for k, t in marks if k == "end"]
    if len(starts) != rounds or len(ends) != rounds:
        raise RuntimeError(f"Flower ran {len(ends)} of {rounds} rounds")
    return [float(e - s) for s, e in zip(starts, ends, strict=True)] if starts else []
