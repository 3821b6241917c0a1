"""Shared argument checks of the aggregation rules."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from protocol.arrays import NDArrayFloat


def as_vector(name: str, values: npt.ArrayLike, *, positive: bool = False) -> NDArrayFloat:
    """``values`` as a finite, non-empty 1-D float64 array; errors name the argument."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite.")
    if positive and np.any(arr <= 0):
        raise ValueError(f"`{name}` must be > 0.")
    return arr
