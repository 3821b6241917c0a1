"""RRS: round-robin scheduling, equal bandwidth, full power, full speed, FedAvg weights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from controller.algorithms.base import Algorithm
from controller.allocation.instance import Allocation, AllocationInstance
from controller.allocation.pipeline import allocate_for_power
from controller.allocation.power import max_power
from protocol.arrays import NDArrayFloat

__all__ = ["RoundRobin"]


class RoundRobin(Algorithm):
    """Clients take turns: round ``t`` serves the ``k`` after those of round ``t - 1``."""

    name = "rrs"

    def select_clients(
        self, round_idx: int, user_ids: Sequence[str], k: int, rng: np.random.Generator
    ) -> list[str]:
        n = len(user_ids)
        if k < 1 or n == 0:
            return super().select_clients(round_idx, user_ids, k, rng)  # raises
        if k >= n:
            return list(user_ids)
        start = (round_idx * k) % n
        idx = sorted((start + np.arange(k)) % n)
        return [user_ids[int(i)] for i in idx]

    def allocate(
        self, instance: AllocationInstance, *, link_state: NDArrayFloat | None = None
    ) -> Allocation:
        return allocate_for_power(instance, max_power(instance), bandwidth="uniform", csm=False)
