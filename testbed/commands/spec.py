"""`testbed spec ...`: check experiment files."""

from __future__ import annotations

from pathlib import Path

import typer

from protocol.spec import SpecError, load_spec

app = typer.Typer(help="Experiment specification files.", no_args_is_help=True)


@app.command("validate")
def validate(
    files: list[Path] = typer.Argument(..., help="Experiment YAML files to check."),
) -> None:
    """Validate experiment files; print every problem with its field path."""
    failed = 0
    for path in files:
        try:
            spec = load_spec(path)
        except SpecError as err:
            failed += 1
            typer.echo(f"{path}: INVALID ({len(err.problems)} problem(s))", err=True)
            for line in err.problems:
                typer.echo(f"  - {line}", err=True)
            continue
        typer.echo(
            f"{path}: ok ({spec.name}: {len(spec.topology.aps)} APs, {spec.n_ues} UEs, "
            f"{spec.algorithm.name}, {spec.fl.rounds} rounds, backend {spec.backend.kind})"
        )
    if failed:
        raise typer.Exit(code=1)
