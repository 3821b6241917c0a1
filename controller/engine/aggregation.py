"""How a round's weighted updates are summed: in the clear, or under secure aggregation.

The round engine drives either one through the same few calls, stage by stage:
``stages`` names the upload stages in order, ``inputs(stage)`` gives what each agent receives for
that stage (bytes, or ``None``), ``receive(stage, submissions)`` takes what the agents sent, and
``result()`` returns the sum of the weighted updates and the agents whose updates it holds.

An aggregation that can fold a stage's uploads in one by one (a :class:`StreamedAggregation`)
says so with ``streams(stage)``; the engine then hands it each upload as it arrives
(``take(stage, client, body)``, which refuses a malformed one at once), so the server never
holds more than one update per stage in flight, and ``receive`` only reports the refusals.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import numpy as np

from protocol.arrays import NDArrayFloat
from protocol.spec import ExperimentSpec

__all__ = [
    "AggregationError",
    "PlainAggregation",
    "RoundAggregation",
    "StreamedAggregation",
    "plain_aggregation",
]

log = logging.getLogger(__name__)


class AggregationError(RuntimeError):
    """The round cannot produce a sum (e.g. fewer survivors than the threshold)."""


class RoundAggregation(Protocol):
    stages: tuple[str, ...]

    @property
    def upload_bytes(self) -> int:
        """Bytes of one client's update upload, at most (what ``link.mode: iq`` sends)."""
        ...

    def setup_inputs(self) -> dict[str, bytes | None]: ...

    def receive_setup(self, adverts: dict[str, bytes]) -> list[str]: ...

    def inputs(self, stage: str) -> dict[str, bytes | None]: ...

    def receive(self, stage: str, submissions: dict[str, bytes]) -> list[str]: ...

    def result(self) -> tuple[NDArrayFloat, list[str]]: ...


@runtime_checkable
class StreamedAggregation(RoundAggregation, Protocol):
    """A :class:`RoundAggregation` that takes the uploads of some stages as they arrive."""

    def streams(self, stage: str) -> bool:
        """Whether ``stage``'s uploads go through :meth:`take` (not kept until it closes)."""
        ...

    def take(self, stage: str, client: str, body: bytes) -> str | None:
        """Take one client's upload of ``stage``: None, or why it is refused (it then counts
        among ``receive``'s rejected clients). At most once per client and stage."""
        ...


class PlainAggregation:
    """Weighted updates uploaded in the clear as little-endian float32 vectors of length ``dim``.

    Each upload is checked and added to a float64 running sum as it arrives (:meth:`take`):
    memory O(dim), not O(clients * dim). A malformed upload (wrong length, non-finite values)
    is refused before it touches the sum.
    """

    stages: tuple[str, ...] = ("upload",)

    def __init__(self, clients: list[str], dim: int) -> None:
        self._clients = list(clients)
        self._members = set(clients)
        self._dim = dim
        self._sum = np.zeros(dim, dtype=np.float64)
        self._contributors: list[str] = []
        self._rejected: list[str] = []
        self._seen: set[str] = set()

    @property
    def upload_bytes(self) -> int:
        return 4 * self._dim

    def setup_inputs(self) -> dict[str, bytes | None]:
        return dict.fromkeys(self._clients)

    def receive_setup(self, adverts: dict[str, bytes]) -> list[str]:
        return []

    def inputs(self, stage: str) -> dict[str, bytes | None]:
        return dict.fromkeys(self._clients)

    def streams(self, stage: str) -> bool:
        return stage in self.stages

    def take(self, stage: str, client: str, body: bytes) -> str | None:
        """Check one upload (``[dim]`` ``<f4`` bytes) and add it to the sum; None, or why not."""
        if stage not in self.stages or client not in self._members:
            return f"{client} has no {stage} in this round"
        if client in self._seen:
            return f"{client} already sent its {stage}"
        self._seen.add(client)
        problem = self._problem(body)
        if problem is not None:
            log.warning("upload from %s: %s", client, problem)
            self._rejected.append(client)
            return problem
        np.add(self._sum, np.frombuffer(body, dtype="<f4"), out=self._sum)
        self._contributors.append(client)
        return None

    def _problem(self, body: bytes) -> str | None:
        """Why ``body`` is not a usable update, or None."""
        if len(body) != 4 * self._dim:
            return f"{len(body)} bytes, expected {4 * self._dim} (float32 x {self._dim})"
        if not np.isfinite(np.frombuffer(body, dtype="<f4")).all():
            return "non-finite values"
        return None

    def receive(self, stage: str, submissions: dict[str, bytes]) -> list[str]:
        """Add each upload not taken yet (as :meth:`take`); the ids of every rejected one."""
        for client, body in submissions.items():
            if client not in self._seen:
                self.take(stage, client, body)
        return list(self._rejected)

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
