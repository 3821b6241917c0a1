"""The array aliases every package shares (Flower-style ``NDArrayFloat``).

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["NDArrayBool", "NDArrayComplex", "NDArrayFloat", "NDArrayInt"]

NDArrayFloat = npt.NDArray[np.float64]
NDArrayComplex = npt.NDArray[np.complex128]
NDArrayBool = npt.NDArray[np.bool_]
NDArrayInt = npt.NDArray[np.int64]
