"""The CSI the round engine allocates from: a subscriber to the AP cluster, per experiment.

At the start of an experiment the source subscribes to the cluster's ZeroMQ endpoints with a
store that knows the experiment's APs and UEs; every round it turns the latest snapshot into the
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

__all__ = ["CSIGainSource"]

#: CSI messages per AP the planning gain averages (20 x 50 ms: the last second of frames).
_AVERAGE_MESSAGES = 20


class CSIGainSource:
    """Gains from live CSI; :meth:`attach` an experiment first."""

    def __init__(self, endpoints: list[str], stale_s: float) -> None:
        self._endpoints = list(endpoints)
        self._stale_s = stale_s
        self._lock = threading.Lock()
        self._store: CSIStore | None = None
        self._sub: CSISubscriber | None = None
        self._noise_w = 1.0

    def start(self) -> None:
        """Nothing to do until an experiment attaches."""

    def stop(self) -> None:
        with self._lock:
            if self._sub is not None:
                self._sub.stop()
            self._sub = None

    def attach(self, spec: ExperimentSpec) -> None:
        """Subscribe for ``spec``'s APs and UEs (replacing any earlier subscription)."""
        self.stop()
        store = CSIStore(
            ap_ids=[ap.id for ap in spec.topology.aps],
            ue_ids=[ue.id for ue in spec.topology.ues],
            n_ant={ap.id: ap.antennas for ap in spec.topology.aps},
            max_age_s=self._stale_s,
        )
        with self._lock:
            self._store = store
            self._noise_w = thermal_noise_w(spec.radio.bandwidth_hz, spec.radio.noise_figure_db)
            self._sub = CSISubscriber(self._endpoints, store).start()

    def measured_air(self) -> MeasuredAir | None:
        """The APs' own measurements as the link layer's truth (hardware), for the attached
        experiment; None before :meth:`attach`."""
        with self._lock:
            store, noise_w = self._store, self._noise_w
        return MeasuredAir(store, noise_w) if store is not None else None

    def gains(self, ue_ids: list[str]) -> tuple[np.ndarray | None, dict[str, Any]]:
        """``[len(ue_ids)]`` dimensionless gains (NaN where no AP reports the UE), and facts."""
        with self._lock:
            store, noise_w = self._store, self._noise_w
        if store is None:
            return None, {"source": "none"}
        snap = store.snapshot()
        stale = bool(np.all(snap.stale))
        fresh = {a for a, st in zip(snap.ap_ids, snap.stale, strict=True) if stale or not st}
        histories = {a: m for a, m in store.histories().items() if a in fresh}
        out = averaged_gain(histories, ue_ids, noise_power_w=noise_w, window=_AVERAGE_MESSAGES)
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

    def status(self) -> dict[str, Any]:
        with self._lock:
            store = self._store
        if store is None:
            return {"aps": {}, "attached": False}
        snap = store.snapshot()
        aps = {
            ap: {
                "frame": int(snap.frame[i]),
                "age_s": float(snap.age_s[i]) if np.isfinite(snap.age_s[i]) else None,
                "stale": bool(snap.stale[i]),
                "n_ant": int(snap.n_ant[i]),
                "estimator": snap.est[i],
            }
            for i, ap in enumerate(snap.ap_ids)
        }
        return {"attached": True, "aps": aps, "counters": asdict(store.counters)}
