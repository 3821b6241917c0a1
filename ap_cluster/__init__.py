"""AP cluster: per-AP GNU Radio flowgraphs that estimate CSI and publish it on ZeroMQ.

Endpoints: AP ``i`` of a cluster made by :func:`cluster_config_from_spec` binds a ZeroMQ PUB
socket on ``tcp://*:<pub_base_port + i>`` and publishes two-frame messages
``[b"csi.<ap_id>", <JSON payload>]`` (``protocol.csi``). The controller connects a SUB socket
to every entry of :meth:`ClusterConfig.endpoints` (a list of ``tcp://host:port``) and
subscribes to ``b"csi."``.

Light to import: the GNU Radio parts (``PilotEstimator``, ``CsiPackager``, ``ApFlowgraph``)
load on first access.
"""

from __future__ import annotations

from typing import Any

from ap_cluster.config import (
    APProcessConfig,
    ClusterConfig,
    ClusterConfigError,
    RestartPolicy,
    cluster_config_from_spec,
    load_cluster_config,
)
from ap_cluster.estimation import estimate_pbeta, ls_coefficients, mmse_coefficients
from ap_cluster.manager import ClusterManager
from ap_cluster.probe import ProbeResult, find_devices

__all__ = [
    "APProcessConfig",
    "ApFlowgraph",
    "ClusterConfig",
    "ClusterConfigError",
    "ClusterManager",
    "CsiPackager",
    "CsiPublisher",
    "PilotEstimator",
    "ProbeResult",
    "RestartPolicy",
    "cluster_config_from_spec",
    "estimate_pbeta",
    "find_devices",
    "load_cluster_config",
    "ls_coefficients",
    "mmse_coefficients",
]

_LAZY = {
    "ApFlowgraph": "ap_cluster.flowgraph",
    "CsiPackager": "ap_cluster.blocks",
    "PilotEstimator": "ap_cluster.blocks",
    "CsiPublisher": "ap_cluster.publisher",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ap_cluster' has no attribute {name!r}")
