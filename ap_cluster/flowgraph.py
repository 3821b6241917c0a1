"""One AP's receive flowgraph: source (sim or USRP) -> :class:`PilotEstimator` -> CSI.

The same topology is in ``flowgraphs/ap_rx_sim.grc`` and ``flowgraphs/ap_rx_uhd.grc`` for
GNU Radio Companion; this module builds it in Python for the cluster runner. With the cluster
file's ``record`` an :class:`~ap_cluster.recording.ApRecorder` taps the source (SigMF); with
``replay`` a recording takes the source's place (:class:`~ap_cluster.recording.ReplaySource`),
in front of the same estimator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from gnuradio import gr

from ap_cluster.blocks import PilotEstimator, PriorFn
from ap_cluster.config import ClusterConfig
from protocol.csi import CSIMessage
from protocol.spec import ExperimentSpec, UHDBackendSpec

__all__ = ["ApFlowgraph", "build_estimator", "pilot_plan", "publish_every"]


def pilot_plan(spec: ExperimentSpec) -> npt.NDArray[np.int64]:
    """``[U]`` pilot index of each UE.

    Sim: the world's assignment (orthogonal, else least interference). Hardware: orthogonal
    when ``U <= tau_p``, else round robin ``u mod tau_p`` (the UE transmitters are configured
    with these indices; large-scale fading is not known before the run).
    """
    if isinstance(spec.backend, UHDBackendSpec):
        return np.arange(spec.n_ues, dtype=np.int64) % spec.radio.tau_p
    from sim_backend.world import World

    return World(spec).pilot_index


def publish_every(cluster: ClusterConfig) -> int:
    """Frames between published CSI messages for ``cluster.publish_interval_s``."""
    radio = cluster.spec.radio
    frame_s = radio.tau_c / radio.sample_rate_hz
    return max(1, round(cluster.publish_interval_s / frame_s))


def build_estimator(
    cluster: ClusterConfig,
    ap_id: str,
    *,
    on_csi: Callable[[CSIMessage], None] | None,
    world: object | None = None,
    record: bool = False,
    t0_ns: int = 0,
) -> PilotEstimator:
    """AP ``ap_id``'s :class:`PilotEstimator` as the cluster file configures it.

    With ``world`` (a ``sim_backend.World``: sim mode) the MMSE estimator uses the world's
    long-term statistics and the sim's pilot assignment and timing offset; without, it
    estimates the statistics from the received power (hardware).
    """
    spec, radio = cluster.spec, cluster.spec.radio
    ap_index = [a.id for a in spec.topology.aps].index(ap_id)
    prior: PriorFn | None = None
    frame_offset = 0
    if world is not None:
        from sim_backend.world import World

        assert isinstance(world, World)
        pilots = world.pilot_index
        frame_offset = world.cfg.timing_offset_samples
        prior = _genie_prior(world, ap_index)
    else:
        pilots = pilot_plan(spec)
    return PilotEstimator(
        n_ant=spec.topology.aps[ap_index].antennas,
        tau_p=radio.tau_p,
        tau_c=radio.tau_c,
        frame_offset=frame_offset,
        noise_window=cluster.noise_window,
        buffer_frames=cluster.buffer_frames,
        ap_id=ap_id,
        ue_ids=[u.id for u in spec.topology.ues],
        pilot_index=pilots,
        pilot_power_w=[radio.pilot_power_w] * spec.n_ues,
        fs_hz=radio.sample_rate_hz,
        fc_hz=radio.carrier_hz,
        est=cluster.estimator,
        publish_every=publish_every(cluster),
        on_csi=on_csi,
        prior=prior,
        record=record,
        t0_ns=t0_ns,
    )


class ApFlowgraph(gr.top_block):
    """AP ``ap_id`` of ``cluster``; messages go to ``on_csi``.

    Args:
        max_frames: sim only: end of stream after this many frames.
        record: keep every frame's estimates (``self.estimator.packager.recorded()``).
        on_block: sim only: receives the ground truth of every generated block.
    """

    def __init__(
        self,
        cluster: ClusterConfig,
        ap_id: str,
        *,
        on_csi: Callable[[CSIMessage], None] | None,
        max_frames: int | None = None,
        record: bool = False,
        on_block: Callable[[Any], None] | None = None,
    ) -> None:
        gr.top_block.__init__(self, f"ap_rx_{ap_id}")
        spec, radio = cluster.spec, cluster.spec.radio
        ap_index = [a.id for a in spec.topology.aps].index(ap_id)
        n_ant = spec.topology.aps[ap_index].antennas
        self.world: Any = None
        self.source: Any = None
        self.recorder: Any = None
        t0_ns = 0
        if cluster.replay is not None:
            from ap_cluster.recording import ReplaySource, replay_source

            data, _ = replay_source(Path(cluster.replay), ap_id, spec)
            if not isinstance(spec.backend, UHDBackendSpec):
                from sim_backend.world import World

                self.world = World(spec)  # the MMSE estimator's statistics, as recorded
            self.source = ReplaySource(
                data, n_ant, radio.sample_rate_hz, cluster.sim_pace, cluster.publish_interval_s
            )
            hardware = f"replay of {data.name}"
        elif isinstance(spec.backend, UHDBackendSpec):
            from ap_cluster.uhd_source import UHDSettings, make_usrp_source

            settings = UHDSettings.from_spec(
                spec.backend,
                device_args=spec.topology.aps[ap_index].device_args,
                n_ant=n_ant,
                fs_hz=radio.sample_rate_hz,
                fc_hz=radio.carrier_hz,
            )
            self.source = make_usrp_source(settings)
            t0_ns = settings.t0_ns
            hardware = _usrp_description(self.source)
        else:
            from sim_backend.source import SimSource
            from sim_backend.world import World

            self.world = World(spec)
            self.source = SimSource(
                self.world,
                ap_index,
                max_frames=max_frames,
                pace=cluster.sim_pace,
                chunk_s=cluster.publish_interval_s,
                on_block=on_block,
            )
            hardware = f"simulated: sim_backend.SimSource of AP {ap_id} (seed {spec.seed})"
        if cluster.record is not None:
            from ap_cluster.recording import ApRecorder

            self.recorder = ApRecorder(
                self,
                [(self.source, ch) for ch in range(n_ant)],
                ap_id=ap_id,
                spec=spec,
                directory=Path(cluster.record.directory),
                hardware=hardware,
                frame_offset=self.world.cfg.timing_offset_samples if self.world else 0,
                pilot_index=[int(p) for p in pilot_plan(spec)],
                max_bytes=cluster.record.max_bytes,
                max_s=cluster.record.max_s,
                t0_ns=t0_ns,
            )
            on_csi = _tee(self.recorder.on_csi, on_csi)
        self.estimator = build_estimator(
            cluster, ap_id, on_csi=on_csi, world=self.world, record=record, t0_ns=t0_ns
        )
        if cluster.buffer_frames > 0:
            self.source.set_min_output_buffer(cluster.buffer_frames * radio.tau_c)
        for ch in range(n_ant):
            self.connect((self.source, ch), (self.estimator, ch))


def _tee(
    first: Callable[[CSIMessage], None], then: Callable[[CSIMessage], None] | None
) -> Callable[[CSIMessage], None]:
    def both(msg: CSIMessage) -> None:
        first(msg)
        if then is not None:
            then(msg)

    return both


def _usrp_description(src: Any) -> str:
    """``core:hw`` of a recording: the USRP as it reports itself."""
    try:
        info = dict(src.get_usrp_info(0))
    except (RuntimeError, AttributeError) as err:
        return f"USRP (its description could not be read: {err})"
    keys = ("mboard_id", "mboard_name", "mboard_serial", "rx_id", "rx_subdev_name")
    return "USRP " + ", ".join(f"{k} {info[k]}" for k in keys if k in info)


def _genie_prior(world: object, ap: int) -> PriorFn:
    """Long-term statistics of the simulated AP: ``p_u beta_ul`` at the frame and sigma^2."""
    from sim_backend.world import World

    assert isinstance(world, World)
    cfg = world.cfg
    cache: dict[int, npt.NDArray[np.float64]] = {}

    def prior(frame: int) -> tuple[npt.NDArray[np.float64], float]:
        key = frame // world.lsf_stride
        if key not in cache:
            cache.clear()
            cache[key] = cfg.pilot_power_w * world.large_scale(frame, [ap])[:, 0]
        return cache[key], cfg.noise_var_w

    return prior
