"""JCC: joint communication-computation allocation without fairness.

Exact bandwidth, convex power and CSM (latency and energy jointly), FedAvg weights.
"""

from __future__ import annotations

from controller.algorithms.base import Algorithm
from controller.allocation.instance import Allocation, AllocationInstance
from controller.allocation.power import convex_power
from protocol.arrays import NDArrayFloat

__all__ = ["JointCommComp"]


class JointCommComp(Algorithm):
    """The convex joint optimum for the round, with plain data-size aggregation."""

    name = "jcc"

    def allocate(
        self, instance: AllocationInstance, *, link_state: NDArrayFloat | None = None
    ) -> Allocation:
        return convex_power(instance, bandwidth="exact", csm=True)
