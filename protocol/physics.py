"""Physical constants every side shares: thermal noise (DESIGN section 4).

``sigma^2 = -174 dBm/Hz + 10 log10(B) + NF``: the receiver noise power over ``B`` Hz at 290 K.
The simulated world, the CSI gains and the allocation's ``N0`` all come from here.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import math

__all__ = ["THERMAL_NOISE_DBM_PER_HZ", "noise_psd_w_per_hz", "thermal_noise_w"]

#: Thermal noise density at 290 K, dBm/Hz.
THERMAL_NOISE_DBM_PER_HZ = -174.0


def noise_psd_w_per_hz(noise_figure_db: float = 7.0) -> float:
    """Receiver noise density ``N0 = -174 dBm/Hz + NF``, W/Hz."""
    if not math.isfinite(noise_figure_db):
        raise ValueError(f"`noise_figure_db` must be finite, got {noise_figure_db!r}.")
    return 10.0 ** ((THERMAL_NOISE_DBM_PER_HZ + noise_figure_db - 30.0) / 10.0)


def thermal_noise_w(bandwidth_hz: float, noise_figure_db: float = 7.0) -> float:
    """Noise power ``N0 B`` over ``bandwidth_hz`` Hz, W."""
    if not (math.isfinite(bandwidth_hz) and bandwidth_hz > 0):
        raise ValueError(f"`bandwidth_hz` must be finite and > 0, got {bandwidth_hz!r}.")
    return noise_psd_w_per_hz(noise_figure_db) * bandwidth_hz
