"""`testbed run SPEC.yaml`: the main job."""

from __future__ import annotations

from pathlib import Path

import typer


def run(
    spec_file: Path = typer.Argument(..., help="Experiment YAML, e.g. examples/quickstart.yaml."),
    out: Path = typer.Option(None, help="Output folder [default: runs/<name>]."),
) -> None:
    """Start the controller, the AP cluster and one agent per UE; run the experiment; write
    metrics.csv, summary.json and plots to the output folder."""
    from protocol.spec import SpecError, load_spec
    from testbed.launcher import LaunchError, run_experiment

    try:
        spec = load_spec(spec_file)
    except SpecError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(code=2) from None
    out = out or Path("runs") / spec.name
    typer.echo(
        f"running {spec.name}: {len(spec.topology.aps)} APs ({spec.backend.kind}), "
        f"{spec.n_ues} agents, {spec.fl.rounds} rounds of {spec.algorithm.name}, "
        f"secure aggregation {'on' if spec.secure_aggregation.enabled else 'off'} -> {out}"
    )
    try:
        summary = run_experiment(spec, out)
    except LaunchError as err:
        typer.echo(f"run failed: {err}\nlogs: {out / 'logs'}", err=True)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt as err:  # SIGINT, SIGTERM, SIGHUP: every child has been stopped
        typer.echo(f"run interrupted ({err or 'SIGINT'}); every process it started is stopped")
        raise typer.Exit(code=130) from None
    typer.echo(
        f"done: {summary['rounds_completed']} rounds in {summary['measured_wall_time_s']} s "
        f"(measured), {summary['model_time_s']:.1f} s modelled, "
        f"{summary['link_dropouts']} link dropouts; final accuracy "
        f"{summary['final_accuracy']:.4f}; results in {out}"
    )
