"""Pilot sequences and pilot assignment.

Pilot ``k`` of length ``tau_p`` is the DFT column ``phi_k[t] = exp(j 2 pi k t / tau_p)``: unit
power per sample, mutually orthogonal, and the matched filters of all pilots at once are one
forward FFT of the received pilot segment (``Z[k] = sum_t y[t] conj(phi_k[t])``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["assign_pilots", "pilot_matrix"]


def pilot_matrix(tau_p: int) -> npt.NDArray[np.complex128]:
    """``[tau_p, tau_p]`` complex128; row ``k`` is pilot ``k`` over time."""
    if tau_p < 1:
        raise ValueError("`tau_p` must be >= 1.")
    t = np.arange(tau_p)
    return np.exp(2j * np.pi * np.outer(t, t) / tau_p)


def assign_pilots(beta: npt.NDArray[np.float64], tau_p: int) -> npt.NDArray[np.int64]:
    """Pilot index per UE.

    With ``U <= tau_p`` every UE gets its own pilot (``u -> u``). Otherwise the first ``tau_p``
    UEs take pilots ``0..tau_p-1`` and each further UE ``k`` joins, at its master AP
    ``l = argmax_l beta[k, l]``, the pilot with the least interference ``sum_{i on t} beta[i, l]``
    (Björnson and Sanguinetti, 2020; Demir et al. 2021, Algorithm 4.1).

    Args:
        beta: ``[U, L]`` large-scale fading (linear).
        tau_p: number of orthogonal pilots.
    Returns:
        ``[U]`` int64 pilot indices in ``[0, tau_p)``.
    """
    n_ues = beta.shape[0]
    pilots = np.empty(n_ues, dtype=np.int64)
    first = min(n_ues, tau_p)
    pilots[:first] = np.arange(first)
    for k in range(first, n_ues):
        master = int(np.argmax(beta[k]))
        load = np.zeros(tau_p)
        np.add.at(load, pilots[:k], beta[:k, master])
        pilots[k] = int(np.argmin(load))
    return pilots
