"""FAL: fairness-aware aggregation weights (DESIGN section 6).

The fairness-regularised loss ``F(w) = sum_u p_u L_u(w) + lambda Var_u(L_u(w))`` with
``Var = (1/U) sum_u (L_u - Lbar)^2`` has the gradient ``sum_u [p_u + (2 lambda/U)(L_u - Lbar)]
grad L_u``, so clients whose loss is above the mean count more:
``q_u = max(0, p_u + (2 lambda / U)(L_u - Lbar))``, renormalised to sum to 1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from controller.aggregation._validate import as_vector
from controller.aggregation.fedavg import data_weights
from protocol.arrays import NDArrayFloat

__all__ = ["fair_loss", "fairness_variance", "fal_weights"]


def fairness_variance(losses: npt.ArrayLike) -> float:
    """``(1/U) sum_u (L_u - Lbar)^2`` of the clients' losses ``[U]`` (population variance)."""
    loss = as_vector("losses", losses)
    return float(np.mean((loss - loss.mean()) ** 2))


def fair_loss(losses: npt.ArrayLike, data_sizes: npt.ArrayLike, lam: float) -> float:
    """``F = sum_u p_u L_u + lambda Var(L)`` with ``p_u`` proportional to ``data_sizes``."""
    loss = as_vector("losses", losses)
    return float(data_weights(data_sizes) @ loss + lam * fairness_variance(loss))


def fal_weights(losses: npt.ArrayLike, data_sizes: npt.ArrayLike, lam: float) -> NDArrayFloat:
    """FAL aggregation weights ``q`` ``[U]``: non-negative, summing to 1.

    Args:
        losses: ``[U]`` each client's reported loss ``L_u`` (of the global model on its data).
        data_sizes: ``[U]`` local samples ``D_u``, > 0.
        lam: fairness weight ``lambda`` >= 0; 0 gives FedAvg's ``p_u``.
    """
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"`lam` must be finite and >= 0, got {lam!r}.")
    loss = as_vector("losses", losses)
    p = data_weights(data_sizes)
    if p.shape != loss.shape:
        raise ValueError(f"`losses` {loss.shape} and `data_sizes` {p.shape} must match.")
    q = np.maximum(0.0, p + (2.0 * lam / loss.shape[0]) * (loss - loss.mean()))
    return q / q.sum()  # sum of the unclipped q is 1, so some q_u > 0
