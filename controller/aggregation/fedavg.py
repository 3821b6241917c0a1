"""FedAvg weighting: each client's update counts in proportion to its data (McMahan et al.)."""

from __future__ import annotations

import numpy.typing as npt

from controller.aggregation._validate import as_vector
from protocol.arrays import NDArrayFloat

__all__ = ["data_weights"]


def data_weights(data_sizes: npt.ArrayLike) -> NDArrayFloat:
    """``p_u = D_u / sum_j D_j``; ``[U]`` float64 summing to 1.

    Args:
        data_sizes: ``[U]`` local training samples of each client, > 0.
    """
    d = as_vector("data_sizes", data_sizes, positive=True)
    return d / d.sum()
