"""JCC: joint communication-computation allocation without fairness.

Exact bandwidth, convex power and CSM (latency and energy jointly), FedAvg weights.
"""

from __future__ import annotations

from controller.allocation.instance import Allocation, AllocationInstance
from controller.allocation.power import convex_power
from controller.allocation.strategies.base import AllocationStrategy

__all__ = ["JointCommComp"]


class JointCommComp(AllocationStrategy):
    """The convex joint optimum for the round, with plain data-size aggregation."""

    name = "jcc"

    def allocate(self, instance: AllocationInstance) -> Allocation:
        return convex_power(instance, bandwidth="exact", csm=True)
