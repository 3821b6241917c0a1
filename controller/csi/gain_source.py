"""The round engine's view of CSI: per-UE combined gains from the AP cluster, on demand.

:class:`CSIGainSource` bundles a :class:`CSIStore` and a :class:`CSISubscriber`:
``start()``, ``gains(ue_ids)`` each round, ``status()`` for the REST API, ``stop()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.csi.gain import combined_gain
from controller.csi.store import CSIStore
from controller.csi.subscriber import CSISubscriber

__all__ = ["CSIGainSource"]


class CSIGainSource:
    """Latest combined gains ``G_u`` from the APs at ``endpoints``.

    Args:
        endpoints: the cluster's PUB endpoints (``ap_cluster.ClusterConfig.endpoints()``).
        stale_s: CSI older than this is left out (s).
        ap_ids: the experiment's APs (others count as unknown); ``None``: accept any.
        noise_power_w: ``N0 B`` of the system model (``thermal_noise_w``): ``G_u`` is then
            ``noise_power_w sum_l ||h_ul||^2 / noise_var_l`` (calibration-free on hardware).
            ``None``: ``G_u = sum_l ||h_ul||^2`` as published (exact in the simulator, whose
            CSI is in absolute units).
    """

    def __init__(
        self,
        endpoints: Iterable[str],
        *,
        stale_s: float = 2.0,
        ap_ids: Sequence[str] | None = None,
        noise_power_w: float | None = None,
    ) -> None:
        self.store = CSIStore(ap_ids=ap_ids, max_age_s=stale_s)
        self._sub = CSISubscriber(endpoints, self.store)
        self._noise_power_w = noise_power_w

    def start(self) -> None:
        self._sub.start()

    def stop(self) -> None:
        self._sub.stop()

    def gains(self, ue_ids: Sequence[str]) -> tuple[npt.NDArray[np.float64] | None, dict[str, Any]]:
        """``([len(ue_ids)] G_u, info)``; NaN for a UE no fresh AP reports, ``None`` if no CSI."""
        snap = self.store.snapshot()
        fresh = [a for a, s in zip(snap.ap_ids, snap.stale, strict=True) if not s]
        info: dict[str, Any] = {
            "source": "csi",
            "fresh_aps": fresh,
            "stale_aps": [a for a, s in zip(snap.ap_ids, snap.stale, strict=True) if s],
            "frames": {a: int(f) for a, f in zip(snap.ap_ids, snap.frame, strict=True)},
        }
        if not fresh:
            return None, info
        if self._noise_power_w is None:
            power = np.sum(np.abs(snap.h) ** 2, axis=1)  # [L, U]
            g = np.sum(np.where(snap.valid, power, 0.0), axis=0)
        else:
            g = combined_gain(snap, noise_power_w=self._noise_power_w)
        col = {u: j for j, u in enumerate(snap.ue_ids)}
        known = snap.valid.any(axis=0)
        out = np.array(
            [g[col[u]] if u in col and known[col[u]] else np.nan for u in ue_ids], dtype=np.float64
        )
        return out, info

    def status(self) -> dict[str, Any]:
        """Per-AP freshness and the message counters (JSON-ready)."""
        snap = self.store.snapshot()
        c = self.store.counters
        aps = {
            a: {
                "frame": int(snap.frame[i]),
                "age_s": None if not np.isfinite(snap.age_s[i]) else float(snap.age_s[i]),
                "stale": bool(snap.stale[i]),
                "n_ant": int(snap.n_ant[i]),
                "noise_var": None if np.isnan(snap.noise_var[i]) else float(snap.noise_var[i]),
            }
            for i, a in enumerate(snap.ap_ids)
        }
        counters = {
            "received": c.received,
            "accepted": c.accepted,
            "malformed": c.malformed,
            "unknown_ap": c.unknown_ap,
            "stale": c.stale,
            "resets": c.resets,
            "by_reason": c.by_reason,
        }
        return {"aps": aps, "counters": counters, "subscriber_running": self._sub.running}
