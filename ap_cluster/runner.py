"""One AP process: ``python -m ap_cluster.runner --cluster cluster.yaml --ap ap0``.

Builds the AP's flowgraph, publishes CSI on its ZeroMQ PUB socket and prints one JSON
heartbeat line per ``heartbeat_interval_s`` on stdout (read by the cluster manager)::

    {"event": "heartbeat", "ap_id": "ap0", "frames": 5000, "published": 50, "dropped": 0,
     "noise_var": 3.98e-13, "uptime_s": 1.0}

It stops by itself when its parent process (the manager) goes away.

Exit codes: 0 end of stream, SIGTERM/SIGINT or parent gone; 2 the estimator failed;
3 hardware error; 4 bad cluster file or AP id (or recording to replay); 5 the recording could
not be written. With the cluster file's ``record``, heartbeats carry ``"recording": true``
until the recording reaches its limit, and the SigMF metadata is written on the way out.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from types import FrameType

from ap_cluster.config import ClusterConfigError, load_cluster_config

__all__ = ["main", "run_ap"]

EXIT_OK, EXIT_ESTIMATOR, EXIT_HARDWARE, EXIT_CONFIG, EXIT_RECORDING = 0, 2, 3, 4, 5


def _emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run_ap(cluster_path: str, ap_id: str, *, max_frames: int | None = None) -> int:
    """Run AP ``ap_id`` until end of stream or a signal; return the exit code."""
    from gnuradio import gr

    from ap_cluster.flowgraph import ApFlowgraph
    from ap_cluster.publisher import CsiPublisher
    from ap_cluster.recording import RecordingError
    from ap_cluster.uhd_source import HardwareError

    gr.logging().set_default_level(gr.log_levels.warn)  # stdout carries the heartbeats

    try:
        cluster = load_cluster_config(cluster_path)
        proc = cluster.ap(ap_id)
    except (ClusterConfigError, KeyError) as err:
        print(f"ap {ap_id}: {err}", file=sys.stderr)
        return EXIT_CONFIG
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    pub = CsiPublisher(proc.bind)
    try:
        tb = ApFlowgraph(cluster, ap_id, on_csi=pub.publish, max_frames=max_frames)
    except HardwareError as err:
        print(f"ap {ap_id}: {err}", file=sys.stderr)
        pub.close()
        return EXIT_HARDWARE
    except RecordingError as err:
        print(f"ap {ap_id}: {err}", file=sys.stderr)
        pub.close()
        return EXIT_CONFIG
    packager = tb.estimator.packager
    done = threading.Event()
    tb.start()

    def _wait() -> None:
        tb.wait()
        done.set()

    threading.Thread(target=_wait, daemon=True).start()
    t_start = time.monotonic()
    parent = os.getppid()
    while not stop.is_set() and not done.is_set():
        done.wait(cluster.heartbeat_interval_s)
        if os.getppid() != parent:  # the manager died: never leave an orphan flowgraph
            print(f"ap {ap_id}: parent process gone; stopping", file=sys.stderr)
            break
        recording = tb.recorder.poll() if tb.recorder is not None else None
        _emit(
            {
                "event": "heartbeat",
                "ap_id": ap_id,
                "frames": packager.frames,
                "published": pub.sent,
                "dropped": pub.dropped,
                "noise_var": packager.noise_var,
                "uptime_s": round(time.monotonic() - t_start, 3),
                **({} if recording is None else {"recording": recording}),
            }
        )
    if not done.is_set():
        tb.stop()
        tb.wait()
    pub.close()
    if tb.recorder is not None:
        try:
            print(f"ap {ap_id}: recorded {tb.recorder.close()}", file=sys.stderr)
        except RecordingError as err:
            print(f"ap {ap_id}: the recording could not be written: {err}", file=sys.stderr)
            return EXIT_RECORDING
    if packager.error is not None:
        print(f"ap {ap_id}: estimator failed: {packager.error!r}", file=sys.stderr)
        return EXIT_ESTIMATOR
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one AP flowgraph of a cluster.")
    parser.add_argument("--cluster", required=True, help="cluster.yaml")
    parser.add_argument("--ap", required=True, help="AP id")
    parser.add_argument("--max-frames", type=int, default=None, help="sim: stop after N frames")
    args = parser.parse_args(argv)
    return run_ap(args.cluster, args.ap, max_frames=args.max_frames)


if __name__ == "__main__":
    sys.exit(main())
