"""FedProx: FedAvg's resources and weights, plus the proximal term ``mu`` for the clients."""

from __future__ import annotations

from controller.aggregation import FedProx
from controller.algorithms.fedavg import FedAvgStrategy

__all__ = ["FedProxStrategy"]


class FedProxStrategy(FedAvgStrategy):
    """``fedprox_mu`` is ``algorithm.fedprox_mu``."""

    name = "fedprox"

    def __init__(self, mu: float, *, seed: int = 0) -> None:
        super().__init__(FedProx(mu), seed=seed)
