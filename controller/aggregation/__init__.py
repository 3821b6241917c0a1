"""Server-side aggregation: FedAvg, FedProx and fairness-aware (FAL) weights.

Public API:

- :func:`data_weights` -- FedAvg's ``p_u = D_u / sum D``;
- :func:`fal_weights` -- ``q_u = max(0, p_u + (2 lambda/U)(L_u - Lbar))``, renormalised;
- :func:`fairness_variance`, :func:`fair_loss` -- the fairness metric and regularised loss;
- :class:`AggregationRule` with :class:`FedAvg`, :class:`FedProx` (``proximal_mu``) and
  :class:`FairAggregation`; :func:`weighted_sum` of weighted updates.
"""

from controller.aggregation.fal import fair_loss, fairness_variance, fal_weights
from controller.aggregation.fedavg import data_weights
from controller.aggregation.rules import (
    AggregationRule,
    FairAggregation,
    FedAvg,
    FedProx,
    weighted_sum,
)

__all__ = [
    "AggregationRule",
    "FairAggregation",
    "FedAvg",
    "FedProx",
    "data_weights",
    "fair_loss",
    "fairness_variance",
    "fal_weights",
    "weighted_sum",
]
