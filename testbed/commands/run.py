"""`testbed run SPEC.yaml`: the main job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def run(
    spec_file: Path = typer.Argument(..., help="Experiment YAML, e.g. examples/quickstart.yaml."),
    out: Path = typer.Option(None, help="Output folder [default: runs/<name>]."),
    engine: str = typer.Option(
        None,
        "--engine",
        help="processes (controller, AP cluster, one agent per UE) or sim (in-process "
        "simulator) [default: the spec's engine.kind, processes].",
    ),
    backend: str = typer.Option(
        None, "--backend", help="sim: local or ray [default: the spec's engine.backend]."
    ),
    ray_address: str = typer.Option(
        None, "--ray-address", help="sim with ray: an existing cluster (e.g. auto, ray://h:10001)."
    ),
    replay: Path = typer.Option(
        None,
        "--replay-csi",
        help="sim: plan from the CSI of a networked run (its rounds.json) instead of the "
        "simulated world's.",
    ),
    record: bool = typer.Option(
        False, "--record", help="Record every AP's IQ as SigMF (OUT/recording; spec: record)."
    ),
    replay_iq: Path = typer.Option(
        None,
        "--replay",
        help="A .sigmf-collection of an earlier run: its IQ feeds the APs' estimators.",
    ),
) -> None:
    """Run the experiment and write metrics.csv, summary.json and plots to the output folder:
    with the networked testbed (the controller, the AP cluster and one agent per UE) or with
    the in-process simulator (`--engine sim`)."""
    from protocol.spec import SpecError, load_spec

    try:
        spec = load_spec(spec_file)
        spec = _with_engine(spec, engine, backend, ray_address)
        if record:
            spec = _with_recording(spec)
    except SpecError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(code=2) from None
    out = out or Path("runs") / spec.name
    if spec.engine.kind == "sim":
        if replay_iq is not None:
            raise typer.BadParameter("the simulator has no IQ to replay", param_hint="--replay")
        _simulate(spec, out, replay)
        return
    if replay_iq is not None and not replay_iq.exists():
        raise typer.BadParameter(f"{replay_iq} does not exist", param_hint="--replay")
    if replay is not None:
        raise typer.BadParameter("only the simulator replays CSI", param_hint="--replay-csi")
    from testbed.launcher import LaunchError, run_experiment

    typer.echo(
        f"running {spec.name}: {len(spec.topology.aps)} APs ({spec.backend.kind}), "
        f"{spec.n_ues} agents, {spec.fl.rounds} rounds of {spec.algorithm.name}, "
        f"secure aggregation {'on' if spec.secure_aggregation.enabled else 'off'} -> {out}"
    )
    try:
        summary = run_experiment(spec, out, replay=replay_iq)
    except LaunchError as err:
        typer.echo(f"run failed: {err}\nlogs: {out / 'logs'}", err=True)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt as err:  # SIGINT, SIGTERM, SIGHUP: every child has been stopped
        typer.echo(f"run interrupted ({err or 'SIGINT'}); every process it started is stopped")
        raise typer.Exit(code=130) from None
    _done(summary, out)


def _with_recording(spec: Any) -> Any:
    """``spec`` with ``record.enabled`` (validated again)."""
    from protocol.spec import parse_spec

    data = spec.model_dump(mode="json", by_alias=True)
    data["record"] = {**data["record"], "enabled": True}
    return parse_spec(data, source="the spec with --record")


def _with_engine(spec: Any, engine: str | None, backend: str | None, address: str | None) -> Any:
    """``spec`` with the command line's engine settings over its own (validated again)."""
    from protocol.spec import parse_spec

    changes = {
        k: v
        for k, v in (("kind", engine), ("backend", backend), ("ray_address", address))
        if v is not None
    }
    if not changes:
        return spec
    data = spec.model_dump(mode="json", by_alias=True)
    data["engine"] = {**data["engine"], **changes}
    return parse_spec(data, source="the spec with the command line's engine options")


def _simulate(spec: Any, out: Path, replay: Path | None) -> None:
    from simulator import aggregation_note
    from testbed.sim_launcher import run_simulation

    rounds = None
    if replay is not None:
        try:
            rounds = json.loads(replay.read_text())
        except (OSError, ValueError) as err:
            raise typer.BadParameter(f"{replay}: {err}", param_hint="--replay-csi") from None
        if not isinstance(rounds, list):
            raise typer.BadParameter(f"{replay}: not a list of rounds", param_hint="--replay-csi")
    eng = spec.engine
    typer.echo(
        f"simulating {spec.name}: {len(spec.topology.aps)} APs, {spec.n_ues} virtual clients "
        f"({spec.clients_per_round} per round), {spec.fl.rounds} rounds of "
        f"{spec.algorithm.name} on {eng.backend}; aggregation {aggregation_note(spec)} -> {out}"
    )
    try:
        summary = run_simulation(spec, out, replay=rounds)
    except KeyboardInterrupt:
        typer.echo("simulation interrupted")
        raise typer.Exit(code=130) from None
    _done(summary, out)


def _done(summary: dict[str, Any], out: Path) -> None:
    acc = summary.get("final_accuracy")
    typer.echo(
        f"done: {summary['rounds_completed']} rounds in {summary['measured_wall_time_s']} s "
        f"(measured), {summary['model_time_s']:.1f} s modelled, "
        f"{summary['link_dropouts']} link dropouts; final accuracy "
        f"{'n/a' if acc is None else f'{acc:.4f}'}; results in {out}"
    )
