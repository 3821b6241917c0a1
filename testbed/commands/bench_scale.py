"""`testbed bench scale`: the in-process simulator at N UEs per round (one JSON object)."""

from __future__ import annotations

import json

import typer


def scale(
    ues: int = typer.Option(1000, "--ues", min=2, max=60000, help="UEs, all selected per round."),
    rounds: int = typer.Option(3, "--rounds", min=1, help="Rounds."),
    backend: str = typer.Option("local", "--backend", help="local or ray."),
    ray_address: str = typer.Option(None, "--ray-address", help="An existing Ray cluster."),
    vs: str = typer.Option(None, "--vs", help="flower: also run Flower's simulation engine."),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print one JSON object."),
) -> None:
    """Seconds per round, training throughput, memory and the time split of the simulator."""
    from testbed.scale_bench import run_scale_bench

    if backend not in ("local", "ray"):
        raise typer.BadParameter("must be local or ray", param_hint="--backend")
    if vs not in (None, "flower"):
        raise typer.BadParameter("the only comparison is flower", param_hint="--vs")
    result = run_scale_bench(
        ues, rounds=rounds, backend=backend, address=ray_address, vs_flower=vs == "flower"
    )
    if as_json:
        typer.echo(json.dumps(result))
        return
    for key, value in result.items():
        typer.echo(f"{key:>30}: {value}")
