"""CPA: convex power allocation only (equal bandwidth, boards at ``f_max``, FedAvg weights)."""

from __future__ import annotations

from controller.algorithms.base import Algorithm
from controller.allocation.instance import Allocation, AllocationInstance
from controller.allocation.power import convex_power
from protocol.arrays import NDArrayFloat

__all__ = ["ConvexPowerOnly"]


class ConvexPowerOnly(Algorithm):
    """Each user's power is the energy-optimal one for its share of the round, nothing else."""

    name = "cpa"

    def allocate(
        self, instance: AllocationInstance, *, link_state: NDArrayFloat | None = None
    ) -> Allocation:
        return convex_power(instance, bandwidth="uniform", csm=False)
