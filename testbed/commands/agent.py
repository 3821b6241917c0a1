"""`testbed agent run`: the edge agent daemon of one board."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="The edge agent of a board (RPi4, Jetson Nano) or a simulated one.")


@app.command("run")
def run(
    controller: str = typer.Option(None, help="Controller URL, e.g. http://10.0.0.1:8080."),
    profile: str = typer.Option(
        None, help="Device profile: rpi4, jetson-nano, custom, or sim (default sim)."
    ),
    dvfs: str = typer.Option(
        None,
        help="DVFS backend: auto, cpufreq, jetson or simulated (default auto); "
        "simulated plays the profile's levels on any host.",
    ),
    energy_meter: str = typer.Option(
        None,
        "--energy-meter",
        help="auto (measure with the INA3221 where present) or none (default auto).",
    ),
    agent_id: str = typer.Option(None, "--id", help="Agent id (default: hostname)."),
    state_dir: Path = typer.Option(None, help="Where the identity key is kept."),
    data_dir: Path = typer.Option(None, help="Dataset folder (default: ../shared/data)."),
    log_level: str = typer.Option("info"),
) -> None:
    """Enrol with the controller, then train and upload in the rounds it assigns.

    Settings not given as options come from TESTBED_AGENT_* variables or `.env`.

    A bad setting (unknown profile, backend or meter) exits with code 2 and names it.
    """
    from edge_agent.__main__ import serve

    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "controller_url": controller,
            "profile": profile,
            "dvfs": dvfs,
            "energy_meter": energy_meter,
            "agent_id": agent_id,
            "state_dir": state_dir,
            "data_dir": data_dir,
        }.items()
        if v is not None
    }
    code = serve(overrides, log_level)
    if code:
        raise typer.Exit(code=code)
