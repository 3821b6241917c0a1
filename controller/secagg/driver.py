"""An in-process driver of one secure-aggregation round, through the serialised messages.

It does what the round engine does over HTTP, with the clients as objects: for each stage it asks
the server what each live client needs (bytes), hands the bytes to the client, and gives the
client's answer (bytes) back to the server; then it closes the stage. Every message crosses as
bytes, so the byte counts are those of the wire. Tests and ``testbed bench secagg`` use it;
it never imports the client package (controller and edge agents meet on the wire only).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from controller.secagg.server import AggregateResult
from protocol.secagg.errors import MessageRejectedError, SecAggError
from protocol.secagg.messages import (
    AdvertiseKeys,
    KeysBroadcast,
    MaskedInput,
    RoundSetup,
    ShareKeys,
    SharesForward,
    UnmaskRequest,
    UnmaskShares,
)
from protocol.secagg.stages import CLIENT_STAGES, Stage

__all__ = ["ClientEndpoint", "RoundReport", "ServerEndpoint", "run_round"]


class ServerEndpoint(Protocol):
    """The byte-level face of :class:`~controller.secagg.server.SecAggServer`."""

    def expected(self, stage: Stage) -> list[str]: ...

    def outbox_bytes(self, stage: Stage, client_id: str) -> bytes: ...

    def receive(self, stage: Stage, body: bytes) -> str: ...

    def advance(self) -> Stage: ...

    @property
    def result(self) -> AggregateResult: ...


class ClientEndpoint(Protocol):
    """What an agent does with each server message (``edge_agent.secagg.SecAggClient``)."""

    client_id: str

    def advertise_keys(self, setup: RoundSetup) -> AdvertiseKeys: ...

    def share_keys(self, broadcast: KeysBroadcast) -> ShareKeys: ...

    def masked_input_encoded(
        self, forward: SharesForward, encoded: npt.NDArray[np.unsignedinteger]
    ) -> MaskedInput: ...

    def unmask(self, request: UnmaskRequest) -> UnmaskShares: ...


@dataclass
class RoundReport:
    """What happened in a driven round.

    Attributes:
        result: the server's unmasked sum.
        uplink_bytes: bytes each client sent, over all stages.
        downlink_bytes: bytes each client received, over all stages.
        client_seconds: per stage, seconds each client spent (parse, compute, serialise).
        dropped: per stage, the clients that dropped out before answering it (as scheduled).
        client_errors: clients that refused a server message, with the error.
        rejected: messages the server refused, as (stage, client, reason).
    """

    result: AggregateResult
    uplink_bytes: dict[str, int] = field(default_factory=dict)
    downlink_bytes: dict[str, int] = field(default_factory=dict)
    client_seconds: dict[Stage, dict[str, float]] = field(default_factory=dict)
    dropped: dict[Stage, list[str]] = field(default_factory=dict)
    client_errors: dict[str, SecAggError] = field(default_factory=dict)
    rejected: list[tuple[Stage, str, str]] = field(default_factory=list)


def _client_step(
    client: ClientEndpoint,
    stage: Stage,
    body: bytes,
    input_of: Callable[[str], npt.NDArray[np.unsignedinteger]],
) -> bytes:
    if stage is Stage.ADVERTISE_KEYS:
        return client.advertise_keys(RoundSetup.from_bytes(body)).to_bytes()
    if stage is Stage.SHARE_KEYS:
        return client.share_keys(KeysBroadcast.from_bytes(body)).to_bytes()
    if stage is Stage.MASKED_INPUT:
        forward = SharesForward.from_bytes(body)
        encoded = input_of(client.client_id)
        return client.masked_input_encoded(forward, encoded).to_bytes()
    return client.unmask(UnmaskRequest.from_bytes(body)).to_bytes()


def run_round(
    server: ServerEndpoint,
    clients: Mapping[str, ClientEndpoint],
    input_of: Callable[[str], npt.NDArray[np.unsignedinteger]],
    *,
    dropouts: Mapping[Stage, Collection[str]] | None = None,
) -> RoundReport:
    """Run all four stages; clients in ``dropouts[stage]`` go silent from that stage on.

    Args:
        server: the server (or a proxy to one in another process).
        clients: client objects by id.
        input_of: the encoded ``[D]`` input of a client, called when it masks.
        dropouts: clients that drop out before answering each stage.

    Raises:
        RoundFailedError: from the server, when a stage ends below the threshold.
    """
    schedule = {Stage(s): list(v) for s, v in (dropouts or {}).items()}
    up: dict[str, int] = {}
    down: dict[str, int] = {}
    seconds: dict[Stage, dict[str, float]] = {}
    errors: dict[str, SecAggError] = {}
    rejected: list[tuple[Stage, str, str]] = []
    gone: set[str] = set()
    for stage in CLIENT_STAGES:
        gone |= set(schedule.get(stage, []))
        seconds[stage] = {}
        for u in server.expected(stage):
            if u in gone or u in errors:
                continue
            body = server.outbox_bytes(stage, u)
            down[u] = down.get(u, 0) + len(body)
            start = time.perf_counter()
            try:
                reply = _client_step(clients[u], stage, body, input_of)
            except SecAggError as err:  # the agent refuses and goes silent: a dropout
                errors[u] = err
                continue
            seconds[stage][u] = time.perf_counter() - start
            up[u] = up.get(u, 0) + len(reply)
            try:
                server.receive(stage, reply)
            except MessageRejectedError as err:
                rejected.append((stage, u, err.reason.value))
        server.advance()
    return RoundReport(
        result=server.result,
        uplink_bytes=up,
        downlink_bytes=down,
        client_seconds=seconds,
        dropped=schedule,
        client_errors=errors,
        rejected=rejected,
    )
