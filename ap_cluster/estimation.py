"""Pilot-based channel estimation on matched-filter outputs (DESIGN section 4): pure numpy.

The flowgraph's C++ blocks deliver, per frame and antenna, the pilot matched-filter outputs
``z[k] = sum_t y[t] conj(phi_k[t])`` for every pilot ``k`` (one FFT of the pilot segment) and
the energy of a silent window of the frame. From those:

- LS: ``h^_u = z[k(u)] / (sqrt(p_u) tau_p)``;
- MMSE (i.i.d. Rayleigh):
  ``h^_u = sqrt(p_u) beta_u / (tau_p sum_{i on k(u)} p_i beta_i + sigma^2) z[k(u)]``;
- noise variance: mean power of the silent window;
- received pilot power per pilot:
  ``(E|z_k|^2 / tau_p - sigma^2) / tau_p = sum_{i on k} p_i beta_i``,
  shared equally by the UEs on the pilot when no prior statistics are given.
"""

from __future__ import annotations

import numpy as np

from protocol.arrays import NDArrayFloat, NDArrayInt

__all__ = ["estimate_pbeta", "ls_coefficients", "mmse_coefficients", "pilot_load", "snr_db"]


_SNR_DB_FLOOR = -100.0


def pilot_load(pbeta: NDArrayFloat, pilot_index: NDArrayInt, tau_p: int) -> NDArrayFloat:
    """``[..., tau_p]`` total received pilot power ``sum_{i on k} p_i beta_i`` per pilot, from
    ``pbeta`` ``[..., K]`` (any leading dimensions, e.g. frames)."""
    onehot = (np.asarray(pilot_index)[:, None] == np.arange(tau_p)[None, :]).astype(np.float64)
    return np.asarray(np.asarray(pbeta, dtype=np.float64) @ onehot)


def ls_coefficients(pilot_power_w: NDArrayFloat, tau_p: int) -> NDArrayFloat:
    """``[K]`` LS scaling ``1 / (sqrt(p_u) tau_p)`` applied to ``z[k(u)]``."""
    return 1.0 / (np.sqrt(pilot_power_w) * tau_p)


def mmse_coefficients(
    pbeta: NDArrayFloat,
    pilot_index: NDArrayInt,
    sigma2: float | NDArrayFloat,
    pilot_power_w: NDArrayFloat,
    tau_p: int,
) -> NDArrayFloat:
    """``[..., K]`` MMSE scaling ``sqrt(p_u) beta_u / (tau_p sum_{i on k(u)} p_i beta_i +
    sigma^2)``.

    Args:
        pbeta: ``[..., K]`` received pilot power per sample ``p_u beta_u`` (sample units
            squared); leading dimensions (e.g. frames) broadcast.
        pilot_index: ``[K]`` pilot of each UE.
        sigma2: noise variance per sample (same units), a scalar or ``[...]``.
        pilot_power_w: ``[K]`` pilot power ``p_u``, W.
        tau_p: pilot length.
    """
    load = pilot_load(pbeta, pilot_index, tau_p)[..., pilot_index]
    s2 = np.asarray(sigma2, dtype=np.float64)[..., None]
    return np.asarray(pbeta / (np.sqrt(pilot_power_w) * (tau_p * load + s2)))


def estimate_pbeta(
    bin_power: NDArrayFloat, pilot_index: NDArrayInt, sigma2: float | NDArrayFloat, tau_p: int
) -> NDArrayFloat:
    """``[..., K]`` received pilot power per UE from ``bin_power[..., k] = E|z_k|^2`` (per
    antenna; ``sigma2`` a scalar or ``[...]``).

    ``E|z_k|^2 = tau_p^2 sum_{i on k} p_i beta_i + tau_p sigma^2``; UEs sharing a pilot cannot
    be told apart, so each gets an equal share.
    """
    s2 = np.asarray(sigma2, dtype=np.float64)[..., None]
    per_pilot = np.maximum(np.asarray(bin_power) / tau_p - s2, 0.0) / tau_p
    sharers = np.bincount(pilot_index, minlength=tau_p).astype(np.float64)
    return np.asarray(per_pilot[..., pilot_index] / sharers[pilot_index])


def snr_db(pbeta: NDArrayFloat, sigma2: float | NDArrayFloat) -> NDArrayFloat:
    """``[..., K]`` per-sample pilot SNR ``p beta / sigma^2`` in dB, floored at -100 dB."""
    s2 = np.asarray(sigma2, dtype=np.float64)[..., None]
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(np.maximum(pbeta, 0.0) / s2)
    return np.maximum(out, _SNR_DB_FLOOR)
