"""`testbed reproduce s2`: regenerate seed paper 2's tables and figures (reproduce package)."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def reproduce(
    paper: str = typer.Argument(
        ..., help="Which paper: s1 (seed paper 1, Fed-MARL agents) or s2 (seed paper 2)."
    ),
    scale: str = typer.Option(
        "smoke",
        "--scale",
        help="smoke (minutes: checks every study runs), medium (half an hour on 2 cores) or "
        "full (hours; a many-core server).",
    ),
    seeds: int = typer.Option(
        None,
        "--seeds",
        min=2,
        max=100,
        help="Seeds of the comparison and ablations [default: the scale's].",
    ),
    engine: str = typer.Option(
        "sim", "--engine", help="sim (in-process simulator) or processes (networked testbed)."
    ),
    out: Path = typer.Option(
        None, "--out", help="Output folder [default: runs/reproduce-<paper>-<scale>]."
    ),
) -> None:
    """Run the paper's experiments and write DIR/report.md and report.html, every figure as
    PNG and every table as CSV. A rerun with the same --out reuses the runs already made."""
    from reproduce import PAPERS, reproduce_s1, reproduce_s2
    from reproduce.plan import SCALES
    from reproduce.runner import ENGINES

    if paper not in PAPERS:
        raise typer.BadParameter(f"must be one of {', '.join(PAPERS)}", param_hint="PAPER")
    if scale not in SCALES:
        raise typer.BadParameter(f"must be one of {', '.join(SCALES)}", param_hint="--scale")
    if engine not in ENGINES:
        raise typer.BadParameter(f"must be one of {', '.join(ENGINES)}", param_hint="--engine")
    out = out or Path("runs") / f"reproduce-{paper}-{scale}"
    started = time.perf_counter()
    if paper == "s1":
        if engine != "sim" or seeds is not None:
            raise typer.BadParameter(
                "s1 runs in process only, with its own seeds (the networked Fed-MARL mode is "
                "not built yet)",
                param_hint="--engine/--seeds",
            )
        report = reproduce_s1(out, scale=scale)
    else:
        report = reproduce_s2(out, scale=scale, seeds=seeds, engine=engine)
    typer.echo(f"{report} ({time.perf_counter() - started:.0f} s measured wall time)")
