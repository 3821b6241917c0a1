"""Secure aggregation inside a round: the round engine's face of :class:`SecAggServer`.

The set-up (participants, threshold, graph, ring) goes to each client with its ``train`` task,
together with the enrolled identity keys of the participants; the clients' key adverts come back
with their train reports; then the three upload stages run through the task board. Clients are
named by UE id; their identity keys are those their agents enrolled with.
"""

from __future__ import annotations

import base64
import json
import logging

import numpy as np

from controller.engine.aggregation import AggregationError
from controller.secagg.server import SecAggServer
from protocol.arrays import NDArrayFloat
from protocol.secagg.errors import MessageRejectedError, RoundFailedError
from protocol.secagg.messages import RoundSetup
from protocol.secagg.stages import Stage
from protocol.spec import ExperimentSpec

__all__ = ["SecureAggregation", "secure_aggregation"]

log = logging.getLogger(__name__)


#: Bytes a masked input's frame adds to its vector, at most: the 8-byte frame head and the
#: signed JSON header (about 400 bytes with ids of a few characters).
MASKED_HEADER_BUDGET = 1024


class SecureAggregation:
    """One round of dropout-tolerant secure aggregation over the UEs in ``clients``."""

    stages: tuple[str, ...] = (Stage.SHARE_KEYS.value, Stage.MASKED_INPUT.value, Stage.UNMASK.value)

    def __init__(
        self,
        spec: ExperimentSpec,
        experiment_id: str,
        round_id: int,
        clients: list[str],
        dim: int,
        identities: dict[str, bytes],
    ) -> None:
        sa = spec.secure_aggregation
        threshold = min(spec.secagg_threshold, len(clients))
        try:
            setup = RoundSetup.create(
                experiment_id=experiment_id,
                round_id=round_id,
                participants=clients,
                dim=dim,
                threshold=max(2, threshold),
                neighbours=sa.neighbours,
                clip=sa.clip,
                fraction_bits=sa.fraction_bits,
            )
        except (ValueError, RoundFailedError) as err:
            raise AggregationError(f"secure-aggregation set-up refused: {err}") from None
        self._server = SecAggServer(setup, identities)
        roster = {u: base64.b64encode(identities[u]).decode() for u in setup.participants}
        self._setup_blob = json.dumps(
            {"setup": base64.b64encode(setup.to_bytes()).decode(), "roster": roster}
        ).encode()

    @property
    def upload_bytes(self) -> int:
        setup = self._server.setup
        return MASKED_HEADER_BUDGET + setup.dim * setup.ring_bits // 8

    def setup_inputs(self) -> dict[str, bytes | None]:
        return dict.fromkeys(self._server.setup.participants, self._setup_blob)

    def receive_setup(self, adverts: dict[str, bytes]) -> list[str]:
        return self._take(Stage.ADVERTISE_KEYS, adverts)

    def inputs(self, stage: str) -> dict[str, bytes | None]:
        s = Stage(stage)
        return {u: self._server.outbox_bytes(s, u) for u in self._server.expected(s)}

    def receive(self, stage: str, submissions: dict[str, bytes]) -> list[str]:
        return self._take(Stage(stage), submissions)

    def _take(self, stage: Stage, submissions: dict[str, bytes]) -> list[str]:
        """Give the server every submission, then close the stage; the rejected clients."""
        rejected = []
        for client, body in submissions.items():
            try:
                sender = self._server.receive(stage, body)
            except MessageRejectedError as err:
                log.warning("%s from %s rejected: %s", stage.value, client, err)
                rejected.append(client)
                continue
            if sender != client:
                log.warning("%s posted by %s claims to be from %s", stage.value, client, sender)
                rejected.append(client)
        try:
            self._server.advance()
        except RoundFailedError as err:
            raise AggregationError(str(err)) from None
        return rejected

    def result(self) -> tuple[NDArrayFloat, list[str]]:
        outcome = self._server.result
        return np.asarray(outcome.sum(), dtype=np.float64), list(outcome.survivors)


def secure_aggregation(
    spec: ExperimentSpec,
    experiment_id: str,
    round_id: int,
    clients: list[str],
    dim: int,
    identities: dict[str, bytes],
) -> SecureAggregation:
    return SecureAggregation(spec, experiment_id, round_id, clients, dim, identities)
