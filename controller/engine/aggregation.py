"""How a round's weighted updates are summed: in the clear, or under secure aggregation.

The round engine drives either one through the same few calls, stage by stage:
``stages`` names the upload stages in order, ``inputs(stage)`` gives what each agent receives for
that stage (bytes, or ``None``), ``receive(stage, submissions)`` takes what the agents sent, and
``result()`` returns the sum of the weighted updates and the agents whose updates it holds.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from protocol.arrays import NDArrayFloat
from protocol.spec import ExperimentSpec

__all__ = ["AggregationError", "PlainAggregation", "RoundAggregation", "plain_aggregation"]

log = logging.getLogger(__name__)


class AggregationError(RuntimeError):
    """The round cannot produce a sum (e.g. fewer survivors than the threshold)."""


class RoundAggregation(Protocol):
    stages: tuple[str, ...]

    def setup_inputs(self) -> dict[str, bytes | None]: ...

    def receive_setup(self, adverts: dict[str, bytes]) -> list[str]: ...

    def inputs(self, stage: str) -> dict[str, bytes | None]: ...

    def receive(self, stage: str, submissions: dict[str, bytes]) -> list[str]: ...

    def result(self) -> tuple[NDArrayFloat, list[str]]: ...


class PlainAggregation:
    """Weighted updates uploaded in the clear as little-endian float32 vectors of length ``dim``.

    The running sum is kept in float64 as uploads arrive: memory O(dim), not O(clients * dim).
    """

    stages: tuple[str, ...] = ("upload",)

    def __init__(self, clients: list[str], dim: int) -> None:
        self._clients = list(clients)
        self._dim = dim
        self._sum = np.zeros(dim, dtype=np.float64)
        self._contributors: list[str] = []

    def setup_inputs(self) -> dict[str, bytes | None]:
        return dict.fromkeys(self._clients)

    def receive_setup(self, adverts: dict[str, bytes]) -> list[str]:
        return []

    def inputs(self, stage: str) -> dict[str, bytes | None]:
        return dict.fromkeys(self._clients)

    def receive(self, stage: str, submissions: dict[str, bytes]) -> list[str]:
        """Add each well-formed upload; return the ids of the rejected ones."""
        rejected = []
        for client, body in submissions.items():
            if len(body) != 4 * self._dim:
                log.warning(
                    "upload from %s: %d bytes, expected %d", client, len(body), 4 * self._dim
                )
                rejected.append(client)
                continue
            update = np.frombuffer(body, dtype="<f4")
            if not np.all(np.isfinite(update)):
                log.warning("upload from %s: non-finite values", client)
                rejected.append(client)
                continue
            self._sum += update
            self._contributors.append(client)
        return rejected

    def result(self) -> tuple[NDArrayFloat, list[str]]:
        if not self._contributors:
            raise AggregationError("no client uploaded a usable update")
        return self._sum, list(self._contributors)


def plain_aggregation(
    spec: ExperimentSpec,
    experiment_id: str,
    round_id: int,
    clients: list[str],
    dim: int,
    identities: dict[str, bytes],
) -> RoundAggregation:
    """The aggregation of a round without secure aggregation."""
    return PlainAggregation(clients, dim)
