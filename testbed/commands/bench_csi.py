"""`testbed bench csi`: channel-estimation accuracy and speed of the real AP flowgraph.

Two runs of the GNU Radio chain of ``ap_cluster`` on one simulated AP with ``--channels``
antennas and ``--ues`` UEs (default ``tau_p``: orthogonal pilots), every UE at the per-sample
pilot SNR ``--snr-db`` (``p beta / sigma^2``) and block fading (independent channels per
frame, so the averages converge fast):

1. accuracy: sim source -> estimator -> CSI messages (every frame) -> ZeroMQ PUB -> the
   controller's subscriber; NMSE ``mean|h^ - h|^2 / mean(beta)`` of LS and MMSE against the
   ground truth, and the CSI messages per second that reached the subscriber;
2. speed: a pre-generated sample buffer, repeated by ``vector_source_c``, feeds the same
   estimator (publishing every ``--publish-every`` frames); ``realtime_factor`` is the
   sustained sample rate per channel divided by ``--fs`` (``speed.realtime_factor_per_cpu``
   divides it by the CPU share the process got, for machines shared with other work). With
   ``--record DIR`` a second speed run has the AP's SigMF recorder writing every sample
   (``speed_recording``, with ``recorded_bytes``).

By default the process pins itself to one CPU core, so every GNU Radio thread shares it.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import typer


def _spec(snr_db: float, tau_p: int, seed: int, fs: float, channels: int, n_ues: int) -> Any:
    from protocol.spec import parse_spec

    return parse_spec(
        {
            "name": "bench-csi",
            "seed": seed,
            "topology": {
                "aps": [{"id": "ap0", "antennas": channels, "position_m": [500.0, 500.0]}],
                "ues": [{"id": f"ue{u}"} for u in range(n_ues)],
            },
            "radio": {
                "tau_p": tau_p,
                "tau_c": max(200, 2 * tau_p),
                "sample_rate_hz": fs,
                "snr_override_db": snr_db,
            },
        },
        source="bench-csi",
    )


def _estimator(world: Any, channels: int, **kw: Any) -> Any:
    from ap_cluster.blocks import PilotEstimator

    cfg = world.cfg

    def prior(frame: int) -> Any:
        return cfg.pilot_power_w * world.large_scale(frame, [0])[:, 0], cfg.noise_var_w

    return PilotEstimator(
        n_ant=channels,
        tau_p=cfg.tau_p,
        tau_c=cfg.tau_c,
        ap_id="ap0",
        ue_ids=cfg.ue_ids,
        pilot_index=world.pilot_index,
        pilot_power_w=cfg.pilot_power_w,
        fs_hz=cfg.fs_hz,
        fc_hz=cfg.fc_hz,
        prior=prior,
        **kw,
    )


def _accuracy(world: Any, channels: int, frames: int) -> dict[str, Any]:
    import numpy as np
    from gnuradio import gr

    from ap_cluster.publisher import CsiPublisher
    from controller.csi import CSIStore, CSISubscriber
    from sim_backend.source import SimSource

    pub = CsiPublisher("tcp://127.0.0.1:*")
    endpoint = pub._sock.getsockopt_string(__import__("zmq").LAST_ENDPOINT)
    store = CSIStore(ap_ids=["ap0"], ue_ids=world.cfg.ue_ids, max_age_s=60.0)
    sub = CSISubscriber([endpoint], store).start()
    time.sleep(0.3)  # let the subscription reach the publisher
    truth: list[Any] = []
    tb = gr.top_block()
    src = SimSource(world, 0, max_frames=frames, on_block=truth.append)
    est = _estimator(world, channels, record=True, on_csi=pub.publish, publish_every=1)
    for ch in range(channels):
        tb.connect((src, ch), (est, ch))
    t0 = time.perf_counter()
    tb.run()
    deadline = time.monotonic() + 5.0
    while store.counters.received < pub.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    sub.stop()
    pub.close()
    ls, mmse = est.packager.recorded()
    h = np.concatenate([b.h for b in truth])[: len(ls)]
    beta = float(np.mean(np.concatenate([b.beta for b in truth])[: len(ls)]))
    return {
        "ls": 10 * math.log10(float(np.mean(np.abs(ls - h) ** 2)) / beta),
        "mmse": 10 * math.log10(float(np.mean(np.abs(mmse - h) ** 2)) / beta),
        "frames": len(ls),
        "msgs_received": store.counters.accepted,
        "msgs_per_s": store.counters.accepted / wall,
    }


def _speed(
    world: Any,
    channels: int,
    duration_s: float,
    publish: int,
    buffer_frames: int,
    record: tuple[Any, Any] | None = None,
) -> dict[str, float]:
    from gnuradio import blocks, gr

    from ap_cluster.publisher import CsiPublisher
    from sim_backend.iq import IQGenerator

    buf = IQGenerator(world, 0, block_frames=256).frames(1024).samples
    pub = CsiPublisher("tcp://127.0.0.1:*")
    tb = gr.top_block()
    srcs = [blocks.vector_source_c(buf[ch], True) for ch in range(channels)]
    for src in srcs:
        src.set_min_output_buffer(buffer_frames * world.cfg.tau_c)
    est = _estimator(
        world, channels, on_csi=pub.publish, publish_every=publish, buffer_frames=buffer_frames
    )
    for ch in range(channels):
        tb.connect(srcs[ch], (est, ch))
    recorder = None
    if record is not None:  # the AP's SigMF recorder on the same streams
        from ap_cluster.recording import ApRecorder

        spec, directory = record
        recorder = ApRecorder(
            tb,
            [(src, 0) for src in srcs],
            ap_id="ap0",
            spec=spec,
            directory=directory,
            hardware="bench: vector_source_c",
            frame_offset=0,
            pilot_index=world.pilot_index.tolist(),
            max_bytes=1 << 40,
        )
    pk = est.packager
    tb.start()
    time.sleep(0.5)  # warm-up
    f0, m0, t0, c0 = pk.frames, pk.published, time.perf_counter(), time.process_time()
    time.sleep(duration_s)
    f1, m1, t1, c1 = pk.frames, pk.published, time.perf_counter(), time.process_time()
    tb.stop()
    tb.wait()
    pub.close()
    written = 0
    if recorder is not None:
        written = recorder.written_samples * channels * 8
        recorder.close()
    rate = (f1 - f0) * world.cfg.tau_c / (t1 - t0)
    cpu = (c1 - c0) / (t1 - t0)
    return {
        "realtime_factor": rate / world.cfg.fs_hz,
        "msps_per_channel": rate / 1e6,
        "frames_per_s": (f1 - f0) / (t1 - t0),
        "published_per_s": (m1 - m0) / (t1 - t0),
        "cpu_cores_used": cpu,
        # on a shared machine the pinned core is not all ours: the rate per CPU-second
        "realtime_factor_per_cpu": rate / world.cfg.fs_hz / cpu if cpu > 0 else float("nan"),
        **({} if recorder is None else {"recorded_bytes": written}),
    }


def csi(
    snr_db: float = typer.Option(..., "--snr-db", help="Per-sample pilot SNR p*beta/sigma^2, dB."),
    tau_p: int = typer.Option(8, "--tau-p", min=1, help="Pilot length, samples."),
    seed: int = typer.Option(0, "--seed", min=0),
    fs: float = typer.Option(1e6, "--fs", help="Sample rate per channel, Hz."),
    channels: int = typer.Option(2, "--channels", min=1, max=2, help="AP antennas (B210: 1|2)."),
    ues: int | None = typer.Option(None, "--ues", min=1, help="UEs; default tau_p."),
    frames: int = typer.Option(2000, "--frames", min=10, help="Frames of the accuracy run."),
    duration: float = typer.Option(3.0, "--duration", help="Seconds of the speed run."),
    publish_every: int = typer.Option(
        100, "--publish-every", min=1, help="Speed run: publish one CSI message per N frames."
    ),
    buffer_frames: int = typer.Option(
        2048, "--buffer-frames", min=1, help="Frames per GNU Radio buffer (as `ap serve`)."
    ),
    pin: bool = typer.Option(True, "--pin/--no-pin", help="Pin the process to one CPU core."),
    record: Path | None = typer.Option(
        None, "--record", help="Also time the speed run with the SigMF recorder writing here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (always JSON)."),
) -> None:
    """NMSE of LS/MMSE through the real flowgraph vs theory, CSI rate, realtime factor."""
    from gnuradio import gr

    from sim_backend.theory import nmse_theory
    from sim_backend.world import World

    gr.logging().set_default_level(gr.log_levels.warn)  # one JSON object on stdout, nothing else

    if pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    n_ues = ues or tau_p
    spec = _spec(snr_db, tau_p, seed, fs, channels, n_ues)
    world = World(spec, rho_override=0.0)
    cfg = world.cfg
    pbeta = cfg.pilot_power_w * world.large_scale(0, [0])[:, 0]
    th_ls, th_mmse = nmse_theory(pbeta, world.pilot_index, cfg.noise_var_w, tau_p)
    acc = _accuracy(world, channels, frames)
    spd = _speed(world, channels, duration, publish_every, buffer_frames)
    rec = None
    if record is not None:
        rec = _speed(world, channels, duration, publish_every, buffer_frames, (spec, record))
    out = {
        "nmse_db": {"ls": acc["ls"], "mmse": acc["mmse"]},
        "nmse_theory_db": {
            "ls": 10 * math.log10(float(th_ls.mean())),
            "mmse": 10 * math.log10(float(th_mmse.mean())),
        },
        "csi_msgs_per_s": acc["msgs_per_s"],
        "realtime_factor": spd["realtime_factor"],
        "speed": spd,
        **({} if rec is None else {"speed_recording": rec}),
        "snr_db": snr_db,
        "tau_p": tau_p,
        "tau_c": cfg.tau_c,
        "n_ues": n_ues,
        "channels": channels,
        "fs_hz": fs,
        "seed": seed,
        "frames": acc["frames"],
        "csi_msgs_received": acc["msgs_received"],
        "pinned_one_core": pin,
    }
    typer.echo(json.dumps(out))
