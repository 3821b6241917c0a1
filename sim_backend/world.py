"""The simulated CF-mMIMO world: one pure function of (spec, frame index).

Every AP process builds its own :class:`World` from the experiment spec and simulates only its
own AP, yet all of them see the same world: UE positions, large-scale fading and each AP's
small-scale fading for frame ``n`` are bit-identical in every process (keyed random streams,
fixed block sizes; see ``sim_backend._rng``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from protocol.arrays import NDArrayComplex, NDArrayFloat
from protocol.spec import ExperimentSpec
from sim_backend.config import SimConfig
from sim_backend.fading import GaussMarkovFading, ShadowingField, jakes_rho, path_loss_db
from sim_backend.geometry import RandomWaypoint, distances_3d
from sim_backend.pilots import assign_pilots

__all__ = ["World"]


class World:
    """Geometry, mobility, fading and pilots of one experiment.

    Args:
        spec: the experiment (topology, radio, sim backend).
        rho_override: force the frame-to-frame fading correlation of every UE (e.g. 0 for
            block fading in benchmarks); default: Jakes from each UE's speed.
        lsf_update_s: the large-scale fading (positions, path loss, shadowing) is evaluated on
            a grid of this period of world time, s (UEs move millimetres per frame).
        fading_block: frames per small-scale fading block (part of the world's identity).
        fading_cache_bytes: small-scale fading kept per AP for frames asked again, B (0:
            the last block only; changes speed and memory, never a value).
    """

    def __init__(
        self,
        spec: ExperimentSpec | SimConfig,
        *,
        rho_override: float | None = None,
        lsf_update_s: float = 0.05,
        fading_block: int = 256,
        fading_cache_bytes: int = 0,
    ) -> None:
        cfg = spec if isinstance(spec, SimConfig) else SimConfig.from_spec(spec)
        self.cfg = cfg
        self._mobility = RandomWaypoint(
            seed=cfg.seed, start_m=cfg.ue_start_m, speed_mps=cfg.ue_speed_mps, area_m=cfg.area_m
        )
        self._shadow: dict[int, ShadowingField] = {}
        self._fading: dict[int, GaussMarkovFading] = {}
        self._fading_block = fading_block
        self._fading_cache_bytes = fading_cache_bytes
        self._lsf_cache: dict[tuple[int, tuple[int, ...]], NDArrayFloat] = {}
        self.lsf_stride = max(1, round(lsf_update_s / cfg.frame_period_s))
        if rho_override is None:
            self.rho = jakes_rho(cfg.ue_speed_mps, fc_hz=cfg.fc_hz, period_s=cfg.frame_period_s)
        else:
            self.rho = np.full(cfg.n_ues, float(rho_override))
        self.pilot_index = assign_pilots(self.large_scale(0), cfg.tau_p)

    # -- large scale -------------------------------------------------------------------------
    def ue_positions(self, frame: int) -> NDArrayFloat:
        """``[U, 2]`` UE positions at the start of ``frame``, m."""
        return self._mobility.positions(frame * self.cfg.frame_period_s)

    def _field(self, ap: int) -> ShadowingField:
        if ap not in self._shadow:
            self._shadow[ap] = ShadowingField(seed=self.cfg.seed, ap=ap)
        return self._shadow[ap]

    def large_scale(self, frame: int, aps: Sequence[int] | None = None) -> NDArrayFloat:
        """``[U, L_sel]`` large-scale fading ``beta`` (linear, dimensionless) at ``frame``.

        Evaluated at the start of the update period that holds ``frame``. With an SNR
        override every entry is ``10^(snr/10) sigma^2 / p_u``.
        """
        cfg = self.cfg
        sel = list(range(cfg.n_aps)) if aps is None else list(aps)
        if cfg.snr_override_db is not None:
            snr = 10.0 ** (cfg.snr_override_db / 10.0)
            per_ue = snr * cfg.noise_var_w / cfg.pilot_power_w
            return np.repeat(per_ue[:, None], len(sel), axis=1)
        grid_frame = (frame // self.lsf_stride) * self.lsf_stride
        key = (grid_frame, tuple(sel))
        if key not in self._lsf_cache:
            if len(self._lsf_cache) >= 16:
                self._lsf_cache.pop(next(iter(self._lsf_cache)))
            self._lsf_cache[key] = self._large_scale(grid_frame, sel)
        return self._lsf_cache[key].copy()

    def _large_scale(self, grid_frame: int, sel: list[int]) -> NDArrayFloat:
        cfg = self.cfg
        xy = self.ue_positions(grid_frame)
        d = distances_3d(
            xy,
            cfg.ap_positions_m[sel],
            area_m=cfg.area_m,
            height_m=cfg.ap_height_m,
            wrap=cfg.wrap_around,
        )
        shadow = np.stack([self._field(a)(xy) for a in sel], axis=1)
        return 10.0 ** ((path_loss_db(d) + shadow) / 10.0)

    # -- small scale -------------------------------------------------------------------------
    def _gm(self, ap: int) -> GaussMarkovFading:
        if ap not in self._fading:
            self._fading[ap] = GaussMarkovFading(
                seed=self.cfg.seed,
                ap=ap,
                n_ues=self.cfg.n_ues,
                n_ant=int(self.cfg.n_ant[ap]),
                rho=self.rho,
                block=self._fading_block,
                cache_bytes=self._fading_cache_bytes,
            )
        return self._fading[ap]

    def small_scale(self, ap: int, start: int, count: int) -> NDArrayComplex:
        """``[count, U, N_ap]`` complex128 normalised Rayleigh fading of AP ``ap``."""
        return self._gm(ap).frames(start, count)

    def beta_frames(self, ap: int, start: int, count: int) -> NDArrayFloat:
        """``[count, U]`` large-scale fading of AP ``ap`` for each frame of the range."""
        out = np.empty((count, self.cfg.n_ues))
        n = start
        while n < start + count:
            nxt = min(start + count, (n // self.lsf_stride + 1) * self.lsf_stride)
            out[n - start : nxt - start] = self.large_scale(n, [ap])[:, 0]
            n = nxt
        return out

    def channel(self, ap: int, start: int, count: int) -> NDArrayComplex:
        """``[count, U, N_ap]`` complex128: ``h = sqrt(beta) g`` for frames ``start..``."""
        beta = self.beta_frames(ap, start, count)
        return np.sqrt(beta)[:, :, None] * self.small_scale(ap, start, count)

    @property
    def max_doppler_hz(self) -> NDArrayFloat:
        """``[U]`` maximum Doppler shift, Hz."""
        from sim_backend.config import SPEED_OF_LIGHT

        return self.cfg.ue_speed_mps * self.cfg.fc_hz / SPEED_OF_LIGHT

    def __repr__(self) -> str:
        c = self.cfg
        return (
            f"World(L={c.n_aps}, U={c.n_ues}, tau_p={c.tau_p}, tau_c={c.tau_c}, "
            f"fs={c.fs_hz:g} Hz, T={c.frame_period_s * 1e3:.3g} ms, seed={c.seed}, "
            f"lsf_stride={self.lsf_stride}, sigma2={10 * math.log10(c.noise_var_w) + 30:.1f} dBm)"
        )
