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

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from controller.csi.store import CSISnapshot
from protocol.arrays import NDArrayFloat, NDArrayInt
from protocol.csi import CSIMessage
from protocol.physics import thermal_noise_w

__all__ = [
    "averaged_gain",
    "combined_gain",
    "message_snr_per_watt",
    "snr_per_watt",
    "thermal_noise_w",
]


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


def message_snr_per_watt(msgs: Sequence[CSIMessage], ue_ids: Sequence[str]) -> NDArrayFloat:
    """``[M, U]`` ``||h^_u||^2 / noise_var`` of each message, 1/W (0: the UE is not in it)."""
    table = np.zeros((len(msgs), len(ue_ids)))
    cols: dict[tuple[str, ...], tuple[NDArrayInt, NDArrayInt]] = {}
    for j, m in enumerate(msgs):
        if m.ue_ids not in cols:  # messages of one AP share their UE list: map it once
            pos = {u: k for k, u in enumerate(m.ue_ids)}
            have = [(i, pos[u]) for i, u in enumerate(ue_ids) if u in pos]
            cols[m.ue_ids] = (
                np.array([i for i, _ in have], dtype=np.int64),
                np.array([k for _, k in have], dtype=np.int64),
            )
        dst, src = cols[m.ue_ids]
        power = np.sum(m.h.real**2 + m.h.imag**2, axis=1)  # [K]
        table[j, dst] = power[src] / m.noise_var
    return table


def averaged_gain(
    histories: Mapping[str, Sequence[CSIMessage]],
    ue_ids: Sequence[str],
    *,
    noise_power_w: float,
    window: int,
) -> NDArrayFloat:
    """``[U]`` ``G_u`` averaged over each AP's last ``window`` messages (NaN: no AP has ``u``).

    An update leaves seconds after the plan, when the small-scale fading of the last frame has
    long decorrelated (1 m/s at 3.5 GHz: coherence ~ 40 ms); what predicts the channel then is
    its local mean, which this average over the recent frames estimates.
    """
    if window < 1:
        raise ValueError(f"`window` must be >= 1, got {window}.")
    total = np.zeros(len(ue_ids))
    seen = np.zeros(len(ue_ids), dtype=bool)
    for msgs in histories.values():
        recent = list(msgs)[-window:]
        if not recent:
            continue
        per_msg = message_snr_per_watt(recent, ue_ids)  # [M, U]
        named = np.array([[u in m.ue_ids for u in ue_ids] for m in recent])
        count = named.sum(axis=0)
        with np.errstate(invalid="ignore"):
            mean = np.where(count > 0, per_msg.sum(axis=0) / np.maximum(count, 1), 0.0)
        total += mean
        seen |= count > 0
    return np.where(seen, noise_power_w * total, np.nan)
