"""Who masks with whom: the complete graph (SecAgg) or a random k-regular graph (SecAgg+).

The k-regular graph is a Harary graph on the participants in a pseudo-random order: each client
is joined to the ``k // 2`` clients on either side of it on a ring, plus the client opposite it
when ``k`` is odd. The order sorts clients by SHA-256 of (experiment, round, id), so every client
computes the same graph from the round set-up alone and the server cannot steer it.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import hashlib
from typing import Dict, FrozenSet, Optional, Sequence

from protocol.secagg._canonical import canonical
from protocol.secagg.keys import PROTOCOL_LABEL

__all__ = ["is_complete", "neighbour_graph"]


def is_complete(n_participants: int, neighbours: Optional[int]) -> bool:
    """Whether ``neighbours`` (k, or None) gives the complete graph on ``n_participants``."""
    return neighbours is None or neighbours >= n_participants - 1


def neighbour_graph(
    participants: Sequence[str],
    neighbours: Optional[int],
    *,
    experiment_id: str,
    round_id: int,
) -> Dict[str, FrozenSet[str]]:
    """The neighbours of every participant (never itself).

    Args:
        participants: distinct client ids.
        neighbours: k of the k-regular graph, k >= 2; None (or k >= n - 1) for the complete graph.
        experiment_id, round_id: seed of the pseudo-random order.

    Raises:
        ValueError: k < 2, or k odd with an odd number of participants (no k-regular graph).
    """
    ids = list(participants)
    n = len(ids)
    if len(set(ids)) != n:
        raise ValueError("`participants` must be distinct.")
    if is_complete(n, neighbours):
        everyone = frozenset(ids)
        return {u: everyone - {u} for u in ids}
    assert neighbours is not None
    k = neighbours
    if k < 2:
        raise ValueError(f"`neighbours` must be at least 2, got {k}.")
    if k % 2 and n % 2:
        raise ValueError(
            f"`neighbours` = {k} is odd and there are {n} participants (odd): "
            "no k-regular graph exists."
        )

    def rank(u: str) -> bytes:
        return hashlib.sha256(
            canonical(PROTOCOL_LABEL, "graph", experiment_id, round_id, u)
        ).digest()

    order = sorted(ids, key=rank)
    offsets = [d for h in range(1, k // 2 + 1) for d in (h, -h)]
    if k % 2:
        offsets.append(n // 2)
    return {u: frozenset(order[(i + d) % n] for d in offsets) for i, u in enumerate(order)}
