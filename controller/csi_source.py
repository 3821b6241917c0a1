"""The CSI the round engine allocates from: a subscriber to the AP cluster, per experiment.

At the start of an experiment the source subscribes to the cluster's ZeroMQ endpoints with a
store of its own that knows the experiment's APs and UEs (two running experiments never share
or replace each other's subscription); every round it turns the latest snapshot into the
combined gains ``G_u`` of DESIGN section 5 (noise power of the experiment's bandwidth and noise
figure), averaged over each AP's last second of CSI: the update leaves seconds later, when
only the channel's local mean still predicts it. When every AP is stale it falls back to the
last estimates and says so.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import Any

import numpy as np

from controller.air import MeasuredAir
from controller.csi import CSIStore, CSISubscriber, averaged_gain, thermal_noise_w
from protocol.spec import ExperimentSpec

__all__ = ["CSIGainSource", "ExperimentCSI"]

#: CSI messages per AP the planning gain averages (20 x 50 ms: the last second of frames).
_AVERAGE_MESSAGES = 20


class ExperimentCSI:
    """One experiment's own subscription: its APs and UEs, its noise power, its counters."""

    def __init__(self, endpoints: list[str], stale_s: float, spec: ExperimentSpec) -> None:
        self.store = CSIStore(
            ap_ids=[ap.id for ap in spec.topology.aps],
            ue_ids=[ue.id for ue in spec.topology.ues],
            n_ant={ap.id: ap.antennas for ap in spec.topology.aps},
            max_age_s=stale_s,
        )
        self.noise_w = thermal_noise_w(spec.radio.bandwidth_hz, spec.radio.noise_figure_db)
        self._sub: CSISubscriber | None = CSISubscriber(endpoints, self.store).start()

    def stop(self) -> None:
        if self._sub is not None:
            self._sub.stop()
            self._sub = None

    def measured_air(self) -> MeasuredAir:
        """The APs' own measurements as the link layer's truth (hardware)."""
        return MeasuredAir(self.store, self.noise_w)

    def gains(self, ue_ids: list[str]) -> tuple[np.ndarray | None, dict[str, Any]]:
        """``[len(ue_ids)]`` dimensionless gains (NaN where no AP reports the UE), and facts."""
        snap = self.store.snapshot()
        stale = bool(np.all(snap.stale))
        fresh = {a for a, st in zip(snap.ap_ids, snap.stale, strict=True) if stale or not st}
        histories = {a: m for a, m in self.store.histories().items() if a in fresh}
        out = averaged_gain(histories, ue_ids, noise_power_w=self.noise_w, window=_AVERAGE_MESSAGES)
        out[~(out > 0)] = np.nan
        info = {
            "source": "csi",
            "all_stale": stale,
            "frames": dict(zip(snap.ap_ids, snap.frame.tolist(), strict=True)),
            "gain_db": {
                u: float(10 * np.log10(x)) for u, x in zip(ue_ids, out, strict=True) if x > 0
            },
        }
        return out, info

    def status(self, ue_ids: list[str] | None = None) -> dict[str, Any]:
        """Each AP's last frame, age, staleness, antennas and estimator, and the ingest
        counters; with ``ue_ids``, also each AP's estimated gain per UE over its last frames
        (``gain_db``, dB; UEs it does not report are left out)."""
        snap = self.store.snapshot()
        histories = self.store.histories() if ue_ids else {}
        aps: dict[str, dict[str, Any]] = {}
        for i, ap in enumerate(snap.ap_ids):
            aps[ap] = {
                "frame": int(snap.frame[i]),
                "age_s": float(snap.age_s[i]) if np.isfinite(snap.age_s[i]) else None,
                "stale": bool(snap.stale[i]),
                "n_ant": int(snap.n_ant[i]),
                "estimator": snap.est[i],
            }
            if ue_ids and ap in histories:
                g = averaged_gain(
                    {ap: histories[ap]},
                    ue_ids,
                    noise_power_w=self.noise_w,
                    window=_AVERAGE_MESSAGES,
                )
                aps[ap]["gain_db"] = {
                    u: float(10 * np.log10(x)) for u, x in zip(ue_ids, g, strict=True) if x > 0
                }
        return {"aps": aps, "counters": asdict(self.store.counters)}


class CSIGainSource:
    """Live CSI for every running experiment, each through its own subscription."""

    def __init__(self, endpoints: list[str], stale_s: float) -> None:
        self._endpoints = list(endpoints)
        self._stale_s = stale_s
        self._lock = threading.Lock()
        self._experiments: dict[str, ExperimentCSI] = {}

    def start(self) -> None:
        """Nothing to do until an experiment attaches."""

    def stop(self) -> None:
        with self._lock:
            attached, self._experiments = list(self._experiments.values()), {}
        for csi in attached:
            csi.stop()

    def attach(self, experiment_id: str, spec: ExperimentSpec) -> ExperimentCSI:
        """Subscribe for ``spec``'s APs and UEs (replacing this experiment's earlier one only)."""
        self.detach(experiment_id)
        csi = ExperimentCSI(self._endpoints, self._stale_s, spec)
        with self._lock:
            self._experiments[experiment_id] = csi
        return csi

    def detach(self, experiment_id: str) -> None:
        with self._lock:
            csi = self._experiments.pop(experiment_id, None)
        if csi is not None:
            csi.stop()

    def status(self) -> dict[str, Any]:
        """Per attached experiment: each AP's last frame, age, staleness; the counters."""
        with self._lock:
            attached = dict(self._experiments)
        return {"experiments": {eid: csi.status() for eid, csi in attached.items()}}
