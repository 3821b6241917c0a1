"""Closed-form channel-estimation NMSE (DESIGN section 4), for tests and benchmarks.

With pilot matched-filter output ``z = sum_{i in P} sqrt(p_i) tau_p h_i + n``, ``n ~ CN(0, tau_p
sigma^2)`` per antenna (``P`` the UEs on UE ``u``'s pilot):

- LS, ``h^ = z / (sqrt(p_u) tau_p)``:
  ``NMSE = (sum_{i in P, i != u} p_i beta_i + sigma^2 / tau_p) / (p_u beta_u)``;
  without contamination ``sigma^2 / (p_u tau_p beta_u) = 1 / (tau_p snr)``.
- MMSE, ``h^ = sqrt(p_u) beta_u / (tau_p sum_{i in P} p_i beta_i + sigma^2) z``:
  ``NMSE = 1 - tau_p p_u beta_u / (tau_p sum_{i in P} p_i beta_i + sigma^2)``;
  without contamination ``1 / (1 + tau_p snr)``.

``snr = p_u beta_u / sigma^2`` is the per-sample pilot SNR. NMSE is ``E|h^ - h|^2 / beta_u``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from protocol.arrays import NDArrayFloat

__all__ = ["nmse_ls", "nmse_mmse", "nmse_theory"]


def nmse_ls(snr: float, tau_p: int) -> float:
    """LS NMSE without contamination (linear) at per-sample pilot SNR ``snr`` (linear)."""
    return 1.0 / (tau_p * snr)


def nmse_mmse(snr: float, tau_p: int) -> float:
    """MMSE NMSE without contamination (linear)."""
    return 1.0 / (1.0 + tau_p * snr)


def nmse_theory(
    pbeta: NDArrayFloat, pilot_index: npt.NDArray[np.int64], sigma2: float, tau_p: int
) -> tuple[NDArrayFloat, NDArrayFloat]:
    """Per-UE LS and MMSE NMSE (linear) with contamination at one AP.

    Args:
        pbeta: ``[U]`` received pilot power per sample ``p_u beta_u`` (W, or sample units).
        pilot_index: ``[U]`` pilot of each UE.
        sigma2: noise variance per sample (same units as ``pbeta``).
        tau_p: pilot length.
    Returns:
        ``(ls [U], mmse [U])``.
    """
    load = np.zeros(tau_p)
    np.add.at(load, pilot_index, pbeta)
    total = load[pilot_index]
    ls = (total - pbeta + sigma2 / tau_p) / pbeta
    mmse = 1.0 - tau_p * pbeta / (tau_p * total + sigma2)
    return ls, mmse
