"""Factories behind the GNU Radio Companion blocks in ``flowgraphs/blocks/``.

A ``.grc`` flowgraph names a cluster file and an AP id; these functions build the blocks from
them exactly as ``testbed ap serve`` does (``ap_cluster.flowgraph``). The generated top block
keeps each returned block as an attribute, which keeps the Python blocks alive.
"""

from __future__ import annotations

from typing import Any

from ap_cluster.config import load_cluster_config

__all__ = ["make_ap_estimator", "make_sim_source"]

_WORLDS: dict[str, Any] = {}


def _world(cluster_path: str) -> Any:
    """One ``World`` per cluster file in this process (source and estimator share it)."""
    if cluster_path not in _WORLDS:
        from sim_backend.world import World

        _WORLDS[cluster_path] = World(load_cluster_config(cluster_path).spec)
    return _WORLDS[cluster_path]


def make_sim_source(cluster_path: str, ap_id: str, max_frames: int = -1) -> Any:
    """The simulated AP ``ap_id`` (``max_frames < 0``: forever), paced as the file says."""
    from sim_backend.source import SimSource

    cluster = load_cluster_config(cluster_path)
    world = _world(cluster_path)
    return SimSource(
        world,
        world.cfg.ap_index(ap_id),
        max_frames=None if max_frames < 0 else max_frames,
        pace=cluster.sim_pace,
        chunk_s=cluster.publish_interval_s,
    )


def make_ap_estimator(cluster_path: str, ap_id: str) -> Any:
    """AP ``ap_id``'s estimator, publishing CSI on the AP's endpoint from the cluster file."""
    from ap_cluster.flowgraph import build_estimator
    from ap_cluster.publisher import CsiPublisher

    cluster = load_cluster_config(cluster_path)
    pub = CsiPublisher(cluster.ap(ap_id).bind)
    world = _world(cluster_path) if cluster.backend == "sim" else None
    t0_ns = 0
    if cluster.backend == "uhd":
        from protocol.spec import UHDBackendSpec

        assert isinstance(cluster.spec.backend, UHDBackendSpec)
        t0_ns = round(cluster.spec.backend.start_delay_s * 1e9)
    est = build_estimator(cluster, ap_id, on_csi=pub.publish, world=world, t0_ns=t0_ns)
    est.publisher = pub  # lives as long as the block
    return est
