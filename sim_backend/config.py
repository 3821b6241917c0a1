"""The simulated world's parameters, resolved from an :class:`~protocol.spec.ExperimentSpec`.

Everything random about the placement (AP positions left out of the spec) is drawn here from
keyed streams, so every process that builds a :class:`SimConfig` from the same spec gets the
same one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.physics import thermal_noise_w
from protocol.spec import ExperimentSpec, SimBackendSpec
from sim_backend._rng import TAG_AP_POSITION, keyed_rng

__all__ = ["SPEED_OF_LIGHT", "SimConfig", "thermal_noise_w"]

SPEED_OF_LIGHT = 299_792_458.0


@dataclass(frozen=True)
class SimConfig:
    """Resolved world parameters (SI units).

    Attributes:
        seed: world seed (the spec's).
        ap_ids: ``[L]`` AP ids; ``ue_ids``: ``[U]`` UE ids.
        ap_positions_m: ``[L, 2]`` float64, m.
        n_ant: ``[L]`` int, antennas per AP.
        ue_start_m: ``[U, 2]`` float64 or NaN rows (random start), m.
        ue_speed_mps: ``[U]`` float64, random-waypoint speed, m/s.
        area_m, wrap_around, ap_height_m: geometry.
        fc_hz, fs_hz, bandwidth_hz: carrier, sample rate and noise bandwidth, Hz.
        tau_p, tau_c: pilot and frame length, samples.
        noise_var_w: noise power per complex sample, W.
        pilot_power_w: ``[U]`` pilot power per sample, W.
        snr_override_db: if set, every ``p_u beta_ul / sigma^2`` equals it.
        cfo_hz: carrier frequency offset of every UE, Hz.
        timing_offset_samples: samples before the first frame in each AP's stream.
    """

    seed: int
    ap_ids: tuple[str, ...]
    ue_ids: tuple[str, ...]
    ap_positions_m: npt.NDArray[np.float64]
    n_ant: npt.NDArray[np.int64]
    ue_start_m: npt.NDArray[np.float64]
    ue_speed_mps: npt.NDArray[np.float64]
    area_m: float
    wrap_around: bool
    ap_height_m: float
    fc_hz: float
    fs_hz: float
    bandwidth_hz: float
    tau_p: int
    tau_c: int
    noise_var_w: float
    pilot_power_w: npt.NDArray[np.float64]
    snr_override_db: float | None
    cfo_hz: float
    timing_offset_samples: int

    @property
    def n_aps(self) -> int:
        return len(self.ap_ids)

    @property
    def n_ues(self) -> int:
        return len(self.ue_ids)

    @property
    def frame_period_s(self) -> float:
        """Duration of one frame (coherence block), s."""
        return self.tau_c / self.fs_hz

    def ap_index(self, ap_id: str) -> int:
        """Index of AP ``ap_id``; raises ``KeyError`` naming the known ids."""
        try:
            return self.ap_ids.index(ap_id)
        except ValueError:
            raise KeyError(f"unknown AP `{ap_id}`; known: {list(self.ap_ids)}") from None

    @classmethod
    def from_spec(cls, spec: ExperimentSpec) -> SimConfig:
        topo, radio = spec.topology, spec.radio
        area = topo.area_m
        ap_pos = np.empty((len(topo.aps), 2))
        for i, ap in enumerate(topo.aps):
            if ap.position_m is not None:
                ap_pos[i] = ap.position_m
            else:
                ap_pos[i] = keyed_rng(spec.seed, TAG_AP_POSITION, i).uniform(0.0, area, 2)
        ue_start = np.array(
            [u.position_m if u.position_m is not None else (np.nan, np.nan) for u in topo.ues],
            dtype=np.float64,
        )
        backend = spec.backend
        sim = backend if isinstance(backend, SimBackendSpec) else SimBackendSpec()
        return cls(
            seed=spec.seed,
            ap_ids=tuple(a.id for a in topo.aps),
            ue_ids=tuple(u.id for u in topo.ues),
            ap_positions_m=ap_pos,
            n_ant=np.array([a.antennas for a in topo.aps], dtype=np.int64),
            ue_start_m=ue_start.reshape(len(topo.ues), 2),
            ue_speed_mps=np.array([u.speed_mps for u in topo.ues], dtype=np.float64),
            area_m=area,
            wrap_around=topo.wrap_around,
            ap_height_m=topo.ap_height_m,
            fc_hz=radio.carrier_hz,
            fs_hz=radio.sample_rate_hz,
            bandwidth_hz=radio.bandwidth_hz,
            tau_p=radio.tau_p,
            tau_c=radio.tau_c,
            noise_var_w=thermal_noise_w(radio.bandwidth_hz, radio.noise_figure_db),
            pilot_power_w=np.full(len(topo.ues), radio.pilot_power_w),
            snr_override_db=radio.snr_override_db,
            cfo_hz=sim.cfo_hz,
            timing_offset_samples=sim.timing_offset_samples,
        )
