"""Per-UE combined channel gain for the system model of DESIGN section 5.

The rate of UE ``u`` is ``r_u = B_u log2(1 + P_u G_u / (N0 B_u))`` with
``G_u = sum_l ||h^_{u,l}||^2`` (MR combining over the APs), ``G_u`` dimensionless (path gain,
like ``beta``) and ``N0`` in W/Hz.

Hardware CSI is in uncalibrated ADC units, but the ratio ``||h^_{u,l}||^2 / noise_var_l`` is not
(1/W: the SNR per watt of pilot power, ``h`` being scaled by ``sqrt(p_u)``; see
``protocol.csi``). So the helper computes::

    G_u = noise_power_w * sum_{l fresh} ||h^_{u,l}||^2 / noise_var_l

with ``noise_power_w = N0 * B`` the thermal noise over the band ``B`` (``-174 dBm/Hz + 10
log10(B) + NF``, :func:`thermal_noise_w`). In the simulator ``noise_var_l`` *is* that noise
power, so ``G_u`` is exactly ``sum_l ||h^_{u,l}||^2``; on hardware it is the same quantity
referred to the nominal receiver noise. Use the same ``N0 = noise_power_w / B`` in the rate.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from controller.csi.store import CSISnapshot
from protocol.physics import thermal_noise_w

__all__ = ["combined_gain", "snr_per_watt", "thermal_noise_w"]


def snr_per_watt(snap: CSISnapshot, *, include_stale: bool = False) -> npt.NDArray[np.float64]:
    """``[U]`` ``sum_l ||h^_{u,l}||^2 / noise_var_l`` over APs with CSI of ``u``, 1/W.

    Stale APs are left out unless ``include_stale``; a UE no AP reports gets 0.
    """
    power = np.sum(np.abs(snap.h) ** 2, axis=1)  # [L, U]
    use = snap.valid.copy()
    if include_stale:
        use = np.isfinite(snap.snr_db)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_ap = np.where(use, power / snap.noise_var[:, None], 0.0)
    return np.sum(np.nan_to_num(per_ap, nan=0.0, posinf=0.0), axis=0)


def combined_gain(
    snap: CSISnapshot, *, noise_power_w: float, include_stale: bool = False
) -> npt.NDArray[np.float64]:
    """``[U]`` dimensionless ``G_u`` (module docstring), UE order ``snap.ue_ids``."""
    if noise_power_w <= 0:
        raise ValueError("`noise_power_w` must be positive.")
    return noise_power_w * snr_per_watt(snap, include_stale=include_stale)
