"""Array aliases shared by the allocation modules."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NDArrayFloat = npt.NDArray[np.float64]
NDArrayBool = npt.NDArray[np.bool_]
NDArrayInt = npt.NDArray[np.int64]

__all__ = ["NDArrayBool", "NDArrayFloat", "NDArrayInt"]
