"""`testbed bench load`: many lightweight agents against the real controller (one JSON object).

The controller runs under uvicorn in its own process; N agents are coroutines of this one
(:mod:`testbed.load_bench`): they speak the agents' protocol but do not train, and each sends a
full-size update every round. The report gives the throughput, the rounds' wall times and the
controller's peak resident memory, which must stay O(model size), not O(agents x model).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def load(
    agents: int = typer.Option(200, "--agents", min=1, help="Lightweight agents (one per UE)."),
    dim: int = typer.Option(
        1_000_000,
        "--dim",
        min=1,
        help="Wanted update size, parameters: the smallest built-in model with at least this "
        "many (else the largest); the report gives the model's own count.",
    ),
    rounds: int = typer.Option(3, "--rounds", min=1, help="Federated rounds."),
    train_s: float = typer.Option(
        0.2, "--train-s", min=0.0, help="What each fake training sleeps (and reports), s."
    ),
    upload_slots: int = typer.Option(
        0,
        "--upload-slots",
        min=0,
        help="Model-sized uploads in flight at once over all agents, as over one shared "
        "uplink (0: no limit).",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the spec and the updates."),
    timeout_s: float = typer.Option(
        1800.0, "--timeout", min=1.0, help="Give up on the experiment after this, s."
    ),
    workdir: Path | None = typer.Option(
        None, "--workdir", help="Keep the controller's database, models and log here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run one experiment with N agents; report throughput and the controller's peak memory."""
    from protocol.spec import SpecError
    from testbed.launcher import LaunchError
    from testbed.load_bench import LoadConfig, run_load

    config = LoadConfig(
        agents=agents,
        dim=dim,
        rounds=rounds,
        seed=seed,
        train_s=train_s,
        upload_slots=upload_slots,
        timeout_s=timeout_s,
        workdir=workdir,
    )
    try:
        out = run_load(config)
    except SpecError as err:
        raise typer.BadParameter(str(err), param_hint="--agents") from None
    except LaunchError as err:
        typer.echo(f"bench load: {err}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(out))
    else:
        for key, value in out.items():
            typer.echo(f"{key:>22}: {value}")
    if not out["completed"]:
        raise typer.Exit(code=1)
