"""`testbed bench fedmarl`: the edge policies at several agent counts (one JSON object)."""

from __future__ import annotations

import json

import typer


def fedmarl(
    agents: str = typer.Option("5,10,20,50", "--agents", help="Agent counts, comma-separated."),
    episodes: int = typer.Option(20, "--episodes", min=0, help="Training episodes per learner."),
    slots: int = typer.Option(200, "--slots", min=1, help="Slots (1 ms) per episode."),
    federate_every: int = typer.Option(2, "--federate-every", min=1, help="Episodes per round."),
    secure: bool = typer.Option(True, "--secure/--plain", help="Federate through SecAgg+."),
    methods: str = typer.Option(None, "--methods", help="Comma-separated [default: all]."),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print one JSON object."),
) -> None:
    """Success rate, bits per joule, Jain's index and seconds per episode of every method."""
    from testbed.fedmarl_bench import run_fedmarl_bench

    try:
        counts = [int(a) for a in agents.split(",") if a.strip()]
    except ValueError:
        raise typer.BadParameter("must be integers, e.g. 5,10,20", param_hint="--agents") from None
    try:
        result = run_fedmarl_bench(
            counts,
            episodes=episodes,
            slots=slots,
            federate_every=federate_every,
            secure=secure,
            methods=methods.split(",") if methods else None,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    if as_json:
        typer.echo(json.dumps(result))
        return
    for row in result["rows"]:
        typer.echo(json.dumps(row))
