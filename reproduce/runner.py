"""Runs the cells of a reproduction, each once: a rerun with the same ``--out`` resumes.

Each cell's rounds (the REST API's round form, as ``testbed run`` writes them) are kept in
``OUT/runs/<cell>/rounds.json`` beside the spec that made them; a cell whose folder already
holds the same spec and all its rounds is read back instead of run again, so a reproduction
stopped half-way (or extended with more seeds) redoes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from reproduce.plan import Cell

__all__ = ["ENGINES", "Engine", "Run", "run_cells"]

log = logging.getLogger(__name__)

Engine = Literal["sim", "processes"]
#: The engines a reproduction runs on.
ENGINES: tuple[str, ...] = get_args(Engine)
#: One cell's committed rounds, as written to ``rounds.json``.
Run = list[dict[str, Any]]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        log.warning("%s is unreadable (%s): the cell runs again", path, err)
        return None


def _cached(folder: Path, spec_json: str, rounds: int) -> Run | None:
    """The cell's rounds if ``folder`` holds a finished run of the same spec.

    ``rounds.json`` is written last (atomically) and removed before a run starts, so its
    presence means the run beside it finished.
    """
    spec_path, rounds_path = folder / "spec.json", folder / "rounds.json"
    if not (spec_path.is_file() and rounds_path.is_file()):
        return None
    if _read_json(spec_path) != json.loads(spec_json):
        return None
    found = _read_json(rounds_path)
    return found if isinstance(found, list) and len(found) == rounds else None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _run_one(cell: Cell, folder: Path, engine: Engine) -> tuple[Run, float]:
    started = time.perf_counter()
    if engine == "sim":
        from simulator import simulate

        rounds = simulate(cell.spec, experiment_id=f"{cell.spec.name}-{cell.seed}").rounds
    else:
        from testbed.launcher import run_experiment

        run_experiment(cell.spec, folder)
        rounds = json.loads((folder / "rounds.json").read_text())
    return rounds, time.perf_counter() - started


def run_cells(
    cells: Sequence[Cell],
    out: Path,
    *,
    engine: Engine = "sim",
    progress: bool = True,
    on_cell: Callable[[Cell, float], None] | None = None,
) -> dict[str, Run]:
    """Every cell's rounds, keyed by :attr:`Cell.key`, running those not already in ``out``.

    Args:
        out: the reproduction's folder (the runs go to ``out/runs``).
        engine: ``sim`` (the in-process simulator) or ``processes`` (the networked testbed:
            controller, AP cluster and one agent per UE, on the simulated radio).
        on_cell: called after each cell that ran, with its measured wall time (s).
    """
    from tqdm import tqdm

    runs: dict[str, Run] = {}
    with tqdm(total=len(cells), desc="reproduce", unit="run", disable=not progress) as bar:
        for cell in cells:
            folder = out / "runs" / cell.key
            spec_json = cell.spec.model_dump_json(indent=2, by_alias=True)
            found = _cached(folder, spec_json, cell.spec.fl.rounds)
            if found is None:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "rounds.json").unlink(missing_ok=True)
                found, wall = _run_one(cell, folder, engine)
                (folder / "spec.json").write_text(spec_json)
                (folder / "wall.json").write_text(json.dumps({"measured_wall_s": wall}))
                _write_atomically(folder / "rounds.json", json.dumps(found))
                if on_cell is not None:
                    on_cell(cell, wall)
            runs[cell.key] = found
            bar.set_postfix(cell=cell.key)
            bar.update(1)
    return runs
