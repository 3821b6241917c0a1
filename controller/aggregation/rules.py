"""Aggregation rules behind one small interface (Flower style): FedAvg, FedProx, FAL."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

from controller.aggregation._validate import as_vector
from controller.aggregation.fal import fal_weights
from controller.aggregation.fedavg import data_weights
from protocol.arrays import NDArrayFloat

__all__ = ["AggregationRule", "FairAggregation", "FedAvg", "FedProx", "weighted_sum"]


class AggregationRule(ABC):
    """How the server weights the clients' updates, and the proximal term it asks for."""

    #: FedProx's ``mu`` sent to the clients with the round task (0: plain local SGD).
    proximal_mu: float = 0.0

    @abstractmethod
    def weights(self, losses: npt.ArrayLike, data_sizes: npt.ArrayLike) -> NDArrayFloat:
        """``[U]`` non-negative weights summing to 1, from reported losses and data sizes."""


class FedAvg(AggregationRule):
    """Weights proportional to data size."""

    def weights(self, losses: npt.ArrayLike, data_sizes: npt.ArrayLike) -> NDArrayFloat:
        return data_weights(data_sizes)


class FedProx(FedAvg):
    """FedAvg weights; clients add ``(mu / 2) ||w - w_global||^2`` to their local loss."""

    def __init__(self, mu: float) -> None:
        if not (np.isfinite(mu) and mu >= 0):
            raise ValueError(f"`mu` must be finite and >= 0, got {mu!r}.")
        self.proximal_mu = float(mu)


class FairAggregation(AggregationRule):
    """FAL weights with fairness weight ``lam`` (DESIGN section 6)."""

    def __init__(self, lam: float) -> None:
        if not (np.isfinite(lam) and lam >= 0):
            raise ValueError(f"`lam` must be finite and >= 0, got {lam!r}.")
        self.lam = float(lam)

    def weights(self, losses: npt.ArrayLike, data_sizes: npt.ArrayLike) -> NDArrayFloat:
        return fal_weights(losses, data_sizes, self.lam)


def weighted_sum(updates: npt.ArrayLike, weights: npt.ArrayLike) -> NDArrayFloat:
    """``sum_u q_u delta_u``: ``updates`` ``[U, ...]``, ``weights`` ``[U]`` -> ``[...]``.

    (Under secure aggregation the clients upload ``q_u delta_u`` and the server only sums.)
    """
    q = as_vector("weights", weights)
    x = np.asarray(updates, dtype=np.float64)
    if x.ndim < 1 or x.shape[0] != q.shape[0]:
        raise ValueError(f"`updates` must have {q.shape[0]} rows (one per weight), got {x.shape}.")
    return np.tensordot(q, x, axes=1)
