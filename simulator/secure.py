"""Secure aggregation in the simulator: the real protocol between in-process parties.

The server side is the networked engine's own :class:`controller.engine.secure.SecureAggregation`
(SecAgg+ graph, threshold, ring from the spec); each virtual client is the agent's own
:class:`edge_agent.secagg_session.SecAggSession` with a fresh Ed25519 identity. Every message
crosses as the bytes it would carry over REST, stage by stage, as in the round engine: every
reporter advertises and shares keys, only the clients whose updates arrived send a masked
input (the radio lost the others, and the protocol recovers the sum without them), every
survivor answers the unmask request. Costs are measured (wall clock, bytes).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.engine.aggregation import AggregationError
from controller.engine.secure import SecureAggregation
from edge_agent.secagg_session import SecAggSession
from protocol.arrays import NDArrayFloat
from protocol.secagg import IdentityKey
from protocol.spec import ExperimentSpec

__all__ = ["SecureCost", "secure_sum"]

#: Stages whose message carries a client's masked update (only arrived updates are sent).
_UPDATE_STAGES = ("masked_input",)


@dataclass(frozen=True)
class SecureCost:
    """What one securely aggregated round cost (measured).

    Attributes:
        clients: participants (the round's reporters); contributors: masked inputs summed.
        measured_s: wall time of the whole protocol, client and server work together, s.
        uplink_bytes: bytes all clients sent; downlink_bytes: bytes they received.
    """

    clients: int
    contributors: int
    measured_s: float
    uplink_bytes: int
    downlink_bytes: int


def secure_sum(
    spec: ExperimentSpec,
    experiment_id: str,
    round_id: int,
    reporters: Sequence[str],
    weight_of: Mapping[str, float],
    deltas: Mapping[str, npt.NDArray[np.float32]],
    keys: Mapping[str, Ed25519PrivateKey],
    seed: int | None = None,
) -> tuple[NDArrayFloat, list[str], SecureCost]:
    """``sum_u q_u delta_u`` over the arrived clients, learnt through the protocol.

    Args:
        reporters: the round's participants (they all take part in the key stages).
        weight_of: ``q_u`` of the clients whose updates arrived.
        deltas: ``[P]`` update of every client in ``weight_of``.
        keys: identity key of every reporter.
        seed: seeds each client's stochastic rounding by (seed, round, its place among the
            reporters), so a seeded run repeats exactly (the masks cancel in the sum whatever
            the keys); None: OS-seeded rounding, as the agents round.

    Raises:
        AggregationError: the protocol failed (e.g. fewer survivors than its threshold).
    """
    start = time.perf_counter()
    dim = int(next(iter(deltas.values())).shape[0]) if deltas else 0
    public = {u: IdentityKey(keys[u]).public_bytes for u in reporters}
    agg = SecureAggregation(spec, experiment_id, round_id, list(reporters), dim, public)
    up = down = 0
    order = {u: k for k, u in enumerate(reporters)}
    sessions = {}
    adverts = {}
    for u, blob in agg.setup_inputs().items():
        assert blob is not None
        down += len(blob)
        rng = None if seed is None else np.random.default_rng((seed, round_id, order[u]))
        sessions[u] = SecAggSession(u, keys[u], base64.b64encode(blob).decode(), None, rng)
        adverts[u] = sessions[u].advertise()
        up += len(adverts[u])
    agg.receive_setup(adverts)
    for stage in agg.stages:
        sent = {}
        for u, blob in agg.inputs(stage).items():
            if stage in _UPDATE_STAGES and u not in weight_of:
                continue
            body = blob or b""
            down += len(body)
            delta = deltas.get(u, np.zeros(dim, dtype=np.float32))
            sent[u] = sessions[u].handle(stage, body, delta, float(weight_of.get(u, 0.0)))
            up += len(sent[u])
        rejected = agg.receive(stage, sent)
        if rejected:
            raise AggregationError(f"{stage}: the server refused {rejected}")
    total, contributors = agg.result()
    cost = SecureCost(
        clients=len(reporters),
        contributors=len(contributors),
        measured_s=time.perf_counter() - start,
        uplink_bytes=up,
        downlink_bytes=down,
    )
    return total, contributors, cost
