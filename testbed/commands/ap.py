"""`testbed ap ...`: run the AP cluster, probe the USRPs."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import typer

app = typer.Typer(help="AP cluster: GNU Radio flowgraphs that publish CSI.", no_args_is_help=True)


@app.command("serve")
def serve(
    cluster: Path = typer.Option(..., "--cluster", help="cluster.yaml (see ap_cluster.config)."),
    only: list[str] = typer.Option(
        [], "--ap", help="Run only this AP (repeatable); default: every AP in the file."
    ),
    health_file: Path | None = typer.Option(
        None, "--health-file", help="Rewrite this JSON file with the health report."
    ),
    report_every: float = typer.Option(5.0, "--report-every", help="Health report period, s."),
    duration: float | None = typer.Option(
        None, "--duration", help="Stop after this many seconds (default: until SIGTERM/Ctrl-C)."
    ),
    exit_with_parent: bool = typer.Option(
        False, "--exit-with-parent", help="Stop when the process that started this one exits."
    ),
    record: Path | None = typer.Option(
        None, "--record", help="Record every AP's IQ as SigMF into this folder."
    ),
    replay: Path | None = typer.Option(
        None, "--replay", help="A .sigmf-collection: its IQ feeds the estimators, not the source."
    ),
) -> None:
    """Start one flowgraph process per AP; restart crashed ones; print health as JSON lines.

    A sim cluster file with an ``air`` endpoint also serves the simulated air (the world's true
    channel gains, ``ap_cluster.air``) from this process until it exits. ``--record`` and
    ``--replay`` override the cluster file's ``record`` and ``replay`` (the processes then read
    ``<cluster>.session.yaml`` beside it).
    """
    from ap_cluster.air import AirServerError
    from ap_cluster.config import ClusterConfigError, RecordTarget, load_cluster_config
    from ap_cluster.manager import ClusterManager

    try:
        cfg = load_cluster_config(cluster)
        path = cluster.resolve()
        if record is not None or replay is not None:
            update: dict[str, Any] = {}
            if record is not None:
                limits = cfg.spec.record
                update["record"] = RecordTarget(
                    directory=str(record.resolve()),
                    max_bytes=int(limits.max_mb_per_ap * 1e6),
                    max_s=limits.max_s,
                )
            if replay is not None:
                if not replay.exists():
                    raise ValueError(f"--replay: {replay} does not exist")
                update["replay"] = str(replay.resolve())
            cfg = cfg.model_copy(update=update)
            path = cfg.dump_yaml(path.with_name(path.stem + ".session.yaml"))
        manager = ClusterManager(cfg, path, only=only or None)
    except (ClusterConfigError, ValueError) as err:
        typer.echo(f"testbed ap serve: {err}", err=True)
        raise typer.Exit(code=2) from None
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True  # an early exit (e.g. the air port is taken) must not wait for it
        timer.start()
    if exit_with_parent:
        parent = os.getppid()

        def _watch() -> None:
            while not stop.wait(0.5):
                if os.getppid() != parent:
                    stop.set()

        threading.Thread(target=_watch, daemon=True).start()

    def _report(health: dict[str, Any]) -> None:
        line = json.dumps(health)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if health_file is not None:
            tmp = health_file.with_suffix(health_file.suffix + ".tmp")
            tmp.write_text(line, encoding="utf-8")
            tmp.replace(health_file)

    eps = ", ".join(f"{a}={e}" for a, e in cfg.endpoints_by_ap().items())
    air = f"; air: {cfg.air.bind}" if manager.air_enabled and cfg.air is not None else ""
    typer.echo(f"[ap serve] {cfg.backend} cluster; CSI endpoints: {eps}{air}", err=True)
    try:
        manager.serve(stop, report_every_s=report_every, on_health=_report)
    except AirServerError as err:
        typer.echo(f"testbed ap serve: {err}", err=True)
        raise typer.Exit(code=2) from None
    _report(manager.health())


@app.command("probe")
def probe(
    args: str = typer.Option("", "--args", help="UHD device args filter, e.g. serial=3215ABC."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the attached USRPs (wraps `uhd_find_devices`); exit 1 when there are none."""
    from ap_cluster.probe import find_devices

    res = find_devices(args)
    if as_json:
        typer.echo(json.dumps({"devices": res.devices, "message": res.message}))
    else:
        typer.echo(res.message, err=not res.ok)
        for d in res.devices:
            typer.echo("  " + ", ".join(f"{k}={v}" for k, v in d.items()))
    if not res.ok:
        raise typer.Exit(code=1)
