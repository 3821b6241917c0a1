"""`testbed bench round`: a real networked experiment's round overhead (one JSON object)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer


def round_(
    agents: int = typer.Option(6, "--agents", min=2, help="Agent processes (one per UE)."),
    rounds: int = typer.Option(5, "--rounds", min=2, help="Rounds."),
    secure: bool = typer.Option(
        True, "--secure/--plain", help="Secure aggregation (default) or plain uploads."
    ),
    out: Path = typer.Option(None, help="Run folder [default: a temp dir]."),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print one JSON object."),
) -> None:
    """Wall time per round, slowest training, overhead fraction and per-stage times."""
    from testbed.launcher import LaunchError
    from testbed.round_bench import run_round_bench

    folder = out or Path(tempfile.mkdtemp(prefix="testbed-bench-round-"))
    try:
        result = run_round_bench(folder, agents, rounds, secure)
    except LaunchError as err:
        typer.echo(f"bench round failed: {err}\nlogs: {folder / 'logs'}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"{agents} agents, {result['rounds']} rounds: {result['mean_round_wall_s']} s per round, "
        f"slowest training {result['mean_train_s']} s, overhead {result['overhead_fraction']}"
    )
