"""CSI-only simulation: channel estimates without IQ samples, for large studies.

The pilot matched-filter output of AP ``l``, antenna ``n`` for pilot ``k`` is a sufficient
statistic of the received pilot segment, and its distribution is known in closed form::

    z[k] = sum_{u on k} sqrt(p_u) tau_p h_u + w,   w ~ CN(0, tau_p sigma^2)

so drawing ``z`` directly and applying the LS and MMSE estimators of DESIGN section 4 gives
estimates with exactly the statistics of the IQ path (same world, same channels; only the
noise realisations differ). Cost per frame is ``O(L U N)`` instead of ``O(L N tau_c)`` samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from protocol.arrays import NDArrayComplex, NDArrayFloat
from sim_backend._rng import TAG_CSI_ONLY_NOISE, complex_normal, keyed_rng
from sim_backend.world import World

__all__ = ["CSIOnlyBatch", "CSIOnlySimulator"]


@dataclass(frozen=True)
class CSIOnlyBatch:
    """Frames ``first .. first + F - 1`` for the selected APs ``aps``.

    Arrays are ``[F, L_sel, U, N_max]`` complex128 (antennas an AP lacks are zero):
    ``h`` true channels, ``ls`` and ``mmse`` estimates; ``beta`` is ``[F, L_sel, U]``;
    ``noise_var_w`` the noise variance per sample (W).
    """

    first: int
    aps: tuple[int, ...]
    h: NDArrayComplex
    ls: NDArrayComplex
    mmse: NDArrayComplex
    beta: NDArrayFloat
    noise_var_w: float


class CSIOnlySimulator:
    """Estimates for any APs and frames of ``world``, drawn from their exact distribution."""

    def __init__(self, world: World) -> None:
        self.world = world

    def frames(self, start: int, count: int, aps: Sequence[int] | None = None) -> CSIOnlyBatch:
        w, cfg = self.world, self.world.cfg
        sel = tuple(range(cfg.n_aps)) if aps is None else tuple(aps)
        n_max = int(max(cfg.n_ant[list(sel)]))
        shape = (count, len(sel), cfg.n_ues, n_max)
        h = np.zeros(shape, dtype=np.complex128)
        beta = np.empty((count, len(sel), cfg.n_ues))
        z = np.zeros((count, len(sel), cfg.tau_p, n_max), dtype=np.complex128)
        tau_p, k_of = cfg.tau_p, w.pilot_index
        amp = np.sqrt(cfg.pilot_power_w)
        by_pilot: Any = (slice(None), k_of)  # index [..., pilot of each UE]
        for j, ap in enumerate(sel):
            n = int(cfg.n_ant[ap])
            h[:, j, :, :n] = w.channel(ap, start, count)
            beta[:, j] = w.beta_frames(ap, start, count)
            rng = keyed_rng(cfg.seed, TAG_CSI_ONLY_NOISE, ap, start, count)
            noise = complex_normal(rng, (count, tau_p, n)) * np.sqrt(tau_p * cfg.noise_var_w)
            z[:, j, :, :n] = noise
            np.add.at(z[:, j, :, :n], by_pilot, tau_p * amp[None, :, None] * h[:, j, :, :n])
        zu = z[:, :, k_of, :]  # [F, L, U, N]: each UE's pilot bin
        ls = zu / (amp[None, None, :, None] * tau_p)
        pbeta = beta * cfg.pilot_power_w[None, None, :]  # [F, L, U]
        load = np.zeros((count, len(sel), tau_p))
        np.add.at(load, (slice(None), *by_pilot), pbeta)
        coef = pbeta / (amp * (tau_p * load[:, :, k_of] + cfg.noise_var_w))
        mmse = coef[..., None] * zu
        for j, ap in enumerate(sel):  # keep absent antennas exactly zero
            ls[:, j, :, int(cfg.n_ant[ap]) :] = 0
        return CSIOnlyBatch(
            first=start, aps=sel, h=h, ls=ls, mmse=mmse, beta=beta, noise_var_w=cfg.noise_var_w
        )
