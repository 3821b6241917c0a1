"""`testbed bench chaos`: SIGKILL the controller at random moments; one JSON object."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import typer


def chaos(
    kills: int = typer.Option(20, "--kills", min=0, help="SIGKILLs of the controller."),
    rounds: int = typer.Option(6, "--rounds", min=1, help="Rounds of the experiment."),
    ues: int = typer.Option(3, "--ues", min=2, help="Agents (real torch processes)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the kill moments and the spec."),
    max_delay_s: float = typer.Option(
        6.0, "--max-delay", min=0.6, help="Latest kill after the controller is ready, s."
    ),
    database_url: str = typer.Option(
        None, "--database-url", help="SQLAlchemy URL [default: SQLite in the work folder]."
    ),
    out: Path = typer.Option(None, help="Work folder (logs, database) [default: a temp dir]."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Bar on stderr."),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print one JSON object."),
) -> None:
    """Kill the controller mid-experiment; check every round once, models intact, completion."""
    from tqdm import tqdm

    from testbed.chaos_bench import run_chaos
    from testbed.launcher import LaunchError

    workdir = out or Path(tempfile.mkdtemp(prefix="testbed-chaos-"))
    with tqdm(total=kills, desc="kills", file=sys.stderr, disable=not progress) as bar:
        try:
            result = run_chaos(
                workdir,
                kills=kills,
                seed=seed,
                rounds=rounds,
                ues=ues,
                database_url=database_url,
                max_delay_s=max_delay_s,
                progress=bar.update,
            )
        except LaunchError as err:
            typer.echo(f"chaos failed: {err}\nlogs: {workdir / 'logs'}", err=True)
            raise typer.Exit(code=1) from None
    result["workdir"] = str(workdir)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"{result['kills_done']} kills, {result['rounds_committed']}/{rounds} rounds, "
        f"lost {result['rounds_lost']}, repeated {result['rounds_repeated']}, "
        f"model mismatches {result['model_mismatches']}, completed {result['completed']}"
    )
