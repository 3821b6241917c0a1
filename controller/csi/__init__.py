"""Controller-side CSI ingest: ZeroMQ subscriber, validated store, combined gains.

Typical use (``controller.csi_source`` wraps this for the round engine)::

    store = CSIStore(ap_ids=[...], ue_ids=[...], n_ant={"ap0": 2, ...}, max_age_s=1.0)
    sub = CSISubscriber(cluster.endpoints(), store).start()  # ap_cluster.ClusterConfig
    snap = store.snapshot()                     # [L, N, U] latest CSI, staleness per AP
    g = combined_gain(snap, noise_power_w=thermal_noise_w(spec.radio.bandwidth_hz, 7.0))
    sub.stop()
"""

from __future__ import annotations

from controller.csi.gain import (
    averaged_gain,
    combined_gain,
    message_snr_per_watt,
    snr_per_watt,
    thermal_noise_w,
)
from controller.csi.store import CSICounters, CSISnapshot, CSIStore
from controller.csi.subscriber import CSISubscriber

__all__ = [
    "CSICounters",
    "CSISnapshot",
    "CSIStore",
    "CSISubscriber",
    "averaged_gain",
    "combined_gain",
    "message_snr_per_watt",
    "snr_per_watt",
    "thermal_noise_w",
]
