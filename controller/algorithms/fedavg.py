"""FedAvg: random clients, equal bandwidth, full power and speed, data-size weights."""

from __future__ import annotations

from controller.algorithms.base import Algorithm
from controller.allocation.instance import Allocation, AllocationInstance
from controller.allocation.pipeline import allocate_for_power
from controller.allocation.power import max_power
from protocol.arrays import NDArrayFloat

__all__ = ["FedAvgStrategy"]


class FedAvgStrategy(Algorithm):
    """No resource allocation at all: the plain FL baseline."""

    name = "fedavg"

    def allocate(
        self, instance: AllocationInstance, *, link_state: NDArrayFloat | None = None
    ) -> Allocation:
        return allocate_for_power(instance, max_power(instance), bandwidth="uniform", csm=False)
