"""The in-process simulator: the round core of DESIGN section 8 driven with virtual clients.

:func:`simulate` builds the pieces for one spec and runs it: the clients' data partitioned as
the agents partition it (:mod:`simulator.clients`), a backend that trains them in batches in
this process or on Ray actors (:mod:`simulator.backends`), the radio that gives the CSI and
the true channel (:mod:`simulator.radio`), and the driver (:mod:`simulator.driver`) that calls
the round core. In ``mode: fedmarl`` the clients are the agents' DRQN learners instead
(:mod:`simulator.marl`). ``testbed run SPEC --engine sim`` writes its rounds as the networked
run does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from protocol.spec import ExperimentSpec

__all__ = ["SimResult", "aggregation_note", "simulate"]


@dataclass(frozen=True)
class SimResult:
    """The committed rounds (the REST API's round form), how they were made, and the final
    global model (``[P]`` float32) with the algorithm (its power policy)."""

    rounds: list[dict[str, Any]]
    backend: str
    workers: int
    channel: str
    secure: bool
    policy: Any
    model: Any


def aggregation_note(spec: ExperimentSpec) -> str:
    """How the simulator aggregates ``spec``'s rounds, in words (for the summary)."""
    sa, eng = spec.secure_aggregation, spec.engine
    if not sa.enabled:
        return "plain (secure_aggregation.enabled is false)"
    if spec.clients_per_round <= eng.secagg_max_clients:
        return "secure (the SecAgg+ protocol between in-process parties)"
    return (
        f"plain: {spec.clients_per_round} clients per round exceed "
        f"engine.secagg_max_clients ({eng.secagg_max_clients}); the protocol's cost at this "
        "size: testbed bench secagg"
    )


def simulate(
    spec: ExperimentSpec,
    *,
    experiment_id: str,
    backend: str | None = None,
    address: str | None = None,
    workers: int | None = None,
    data_dir: str | None = None,
    replay: Sequence[dict[str, Any]] | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> SimResult:
    """Run every round of ``spec`` in process (or on Ray); the rounds and the facts.

    Args:
        backend: ``local`` or ``ray`` (default ``spec.engine.backend``).
        address: an existing Ray cluster (default ``spec.engine.ray_address``).
        replay: a networked run's ``rounds.json``: plan from its CSI instead of the sim
            world's (:class:`~simulator.radio.ReplayRadio`).
    """
    from simulator.backends import Backend, make_backend
    from simulator.clients import partition
    from simulator.driver import SimDriver
    from simulator.marl import MarlBackend
    from simulator.radio import Radio, ReplayRadio, SimRadio

    radio: Radio
    if replay is not None:
        radio, channel = ReplayRadio(spec, replay), "exact"
    else:
        sim = SimRadio(spec)
        radio, channel = sim, sim.mode
    clients: Backend
    if spec.mode == "fedmarl":
        kind = backend or spec.engine.backend
        if kind != "local":
            raise ValueError(
                f"`backend`: mode fedmarl's agents learn in this process (local), not {kind!r}"
            )
        clients = MarlBackend(spec)
    else:
        clients = make_backend(
            spec,
            partition(spec, data_dir),
            backend=backend,
            address=address,
            workers=workers,
            data_dir=data_dir,
        )
    try:
        driver = SimDriver(
            spec,
            backend=clients,
            radio=radio,
            experiment_id=experiment_id,
            data_dir=data_dir,
            on_round=on_round,
        )
        rounds = driver.run()
    finally:
        clients.close()
    return SimResult(
        rounds=rounds,
        backend=clients.name,
        workers=clients.workers,
        channel=channel,
        secure=driver.secure,
        policy=driver.algorithm,
        model=driver.model,
    )
