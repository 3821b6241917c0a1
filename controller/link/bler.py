"""Block error rate of one transport block against its SINR (DESIGN section 12).

Per MCS ``m`` a logistic in dB, ``BLER_m(g) = 1 / (1 + exp(s_m (g - mid_m)))``, with the slope
``s_m = table.bler_slope_per_db[m]`` and ``mid_m = sinr_threshold_db[m] - ln(9) / s_m`` (the
50% point), so that ``BLER_m(sinr_threshold_db[m]) = 0.1`` exactly. Threshold and slope are the
fit to the published AWGN curves of the NR LDPC code named in :mod:`controller.link.mcs`
(5G-LENA, Lagen et al., ICC 2020): BLER falls from 0.9 to 0.01 over about 0.5 dB for 8 kbit
code blocks (slopes of 9-17 per dB), and over about 2.4 dB for the 928-bit curve of 64QAM
948/1024 (2.8 per dB).
"""

from __future__ import annotations

import numpy as np

from controller.link.mcs import McsTable
from protocol.arrays import NDArrayFloat, NDArrayInt

__all__ = ["bler", "bler_midpoint_db"]

_LN9 = float(np.log(9.0))


def bler_midpoint_db(table: McsTable) -> NDArrayFloat:
    """``[M]`` float64, dB: the SINR at which each MCS of ``table`` has 50% BLER."""
    return table.sinr_threshold_db - _LN9 / table.bler_slope_per_db


def bler(table: McsTable, mcs: NDArrayInt, sinr_db: NDArrayFloat) -> NDArrayFloat:
    """Probability that one transport block at MCS ``mcs`` fails to decode at SINR ``sinr_db``.

    Args:
        table: the MCS table.
        mcs: ``[...]`` int, position in ``table`` (0..M-1), or -1 for outage.
        sinr_db: ``[...]`` float64, SINR, dB (broadcasts with ``mcs``; -inf and +inf allowed).

    Returns:
        The broadcast shape, float64 in [0, 1]: 1 where ``mcs == -1``; NaN where ``sinr_db`` is
        NaN and ``mcs >= 0``.
    """
    m = np.asarray(mcs)
    if m.size and not np.issubdtype(m.dtype, np.integer):
        raise ValueError(f"`mcs` must be an integer array, got dtype {m.dtype}")
    if np.any((m < -1) | (m >= len(table))):
        raise ValueError(f"`mcs` must lie in -1..{len(table) - 1}, got {m}")
    g = np.asarray(sinr_db, dtype=np.float64)
    safe = np.where(m < 0, 0, m)
    slope = table.bler_slope_per_db[safe]
    z = slope * (g - bler_midpoint_db(table)[safe])
    # 1 / (1 + e^z) written with tanh: no overflow for large |z|, and 0.1 to rounding at ln 9.
    p = 0.5 * (1.0 - np.tanh(0.5 * z))
    return np.asarray(np.where(m < 0, 1.0, p), dtype=np.float64)
