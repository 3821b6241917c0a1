"""The DRL reward of DESIGN section 6: ``R_t = alpha A_t - beta sum_u E_u - gamma sum_u T_u``."""

from __future__ import annotations

import numpy as np

from controller.allocation.instance import ObjectiveWeights
from protocol.arrays import NDArrayFloat

__all__ = ["round_reward"]


def round_reward(
    weights: ObjectiveWeights,
    *,
    accuracy: float,
    energy_j: NDArrayFloat,
    latency_s: NDArrayFloat,
) -> float:
    """Reward of round ``t``.

    Args:
        weights: ``alpha`` (per unit accuracy), ``beta`` (1/J), ``gamma`` (1/s).
        accuracy: test accuracy ``A_t`` of the global model, in [0, 1].
        energy_j: ``[U]`` energy of each scheduled user this round, J.
        latency_s: ``[U]`` latency of each scheduled user this round, s.
    """
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"`accuracy` must lie in [0, 1], got {accuracy!r}.")
    e = np.asarray(energy_j, dtype=np.float64)
    t = np.asarray(latency_s, dtype=np.float64)
    if e.shape != t.shape:
        raise ValueError(f"`energy_j` {e.shape} and `latency_s` {t.shape} must match.")
    return float(weights.alpha * accuracy - weights.beta * e.sum() - weights.gamma * t.sum())
