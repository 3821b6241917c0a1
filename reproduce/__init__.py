"""`testbed reproduce`: regenerate a seed paper's tables and figures with the radio in the loop.

:func:`reproduce_s2` runs seed paper 2's studies (:mod:`reproduce.plan`: the methods, the
ablations, the SNR and heterogeneity sweeps, the three tasks) through the round core, each cell
once (:mod:`reproduce.runner`, which resumes), scores them (:mod:`reproduce.measures`), tests
them (:mod:`reproduce.stats`) and writes the report (:mod:`reproduce.report`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

from reproduce.runner import ENGINES, Engine

__all__ = ["PAPERS", "reproduce_s1", "reproduce_s2"]

#: The papers `testbed reproduce` knows.
PAPERS = ("s1", "s2")


def reproduce_s1(out: Path, *, scale: str = "smoke", progress: bool = True) -> Path:
    """Seed paper 1's comparisons (:mod:`reproduce.s1`); the report's path."""
    from reproduce.s1 import reproduce_s1 as run

    return run(out, scale=scale, progress=progress)


def reproduce_s2(
    out: Path,
    *,
    scale: str = "smoke",
    seeds: int | None = None,
    engine: str = "sim",
    progress: bool = True,
) -> Path:
    """Run seed paper 2's studies at ``scale`` and write the report to ``out``; its path.

    Args:
        scale: ``smoke``, ``medium`` or ``full`` (:data:`reproduce.plan.SCALES`).
        seeds: seeds of the comparison and the ablations (default: the scale's; at least 2).
        engine: ``sim`` (the in-process simulator) or ``processes`` (the networked testbed).

    Raises:
        ValueError: an unknown ``scale`` or ``engine``, or ``seeds`` below 2 (each names it).
    """
    from importlib.metadata import PackageNotFoundError, version

    from reproduce.plan import SCALES, Scale, cells
    from reproduce.report import ReportFacts, write_report
    from reproduce.runner import run_cells
    from reproduce.tables import results

    if scale not in SCALES:
        raise ValueError(f"`scale` must be one of {sorted(SCALES)}, got {scale!r}")
    if engine not in ENGINES:
        raise ValueError(f"`engine` must be one of {ENGINES}, got {engine!r}")
    chosen: Scale = SCALES[scale]
    if seeds is not None:
        if not 2 <= seeds <= 100:
            raise ValueError(f"`seeds` must be 2..100 (a paired t-test needs two), got {seeds}")
        chosen = Scale.model_validate({**chosen.model_dump(), "seeds": seeds})
    driver = cast(Engine, engine)
    todo = list(cells(chosen, engine=driver))
    out.mkdir(parents=True, exist_ok=True)
    made: list[float] = []
    started = time.perf_counter()
    runs = run_cells(
        todo, out, engine=driver, progress=progress, on_cell=lambda _c, wall: made.append(wall)
    )
    try:
        ver = version("cfmimo-fl-testbed")
    except PackageNotFoundError:
        ver = "unknown"
    facts = ReportFacts(
        scale=chosen,
        engine=engine,
        version=ver,
        measured_wall_s=time.perf_counter() - started,
        runs_made=len(made),
        runs_reused=len(todo) - len(made),
    )
    return write_report(out, results(todo, runs, chosen), chosen, facts)
