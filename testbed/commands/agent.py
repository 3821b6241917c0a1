"""`testbed agent run`: the edge agent daemon of one board."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="The edge agent of a board (RPi4, Jetson Nano) or a simulated one.")


@app.command("run")
def run(
    controller: str = typer.Option(None, help="Controller URL, e.g. http://10.0.0.1:8080."),
    profile: str = typer.Option(None, help="Device profile: rpi4, jetson-nano or sim."),
    agent_id: str = typer.Option(None, "--id", help="Agent id [default: hostname]."),
    state_dir: Path = typer.Option(None, help="Where the identity key is kept."),
    data_dir: Path = typer.Option(None, help="Dataset folder [default: ../shared/data]."),
    log_level: str = typer.Option("info"),
) -> None:
    """Enrol with the controller, then train and upload in the rounds it assigns.

    Settings not given as options come from TESTBED_AGENT_* variables or `.env`.
    """
    from pydantic import ValidationError

    from edge_agent.agent import Agent
    from edge_agent.settings import AgentSettings

    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "controller_url": controller,
            "profile": profile,
            "agent_id": agent_id,
            "state_dir": state_dir,
            "data_dir": data_dir,
        }.items()
        if v is not None
    }
    if "profile" in overrides and overrides["profile"] not in ("rpi4", "jetson-nano", "sim"):
        typer.echo("agent: --profile must be rpi4, jetson-nano or sim", err=True)
        raise typer.Exit(code=2)
    try:
        settings = AgentSettings(**overrides)
    except ValidationError as err:
        typer.echo(f"agent: bad settings: {err}", err=True)
        raise typer.Exit(code=2) from None
    logging.basicConfig(
        level=log_level.upper(), format=f"%(asctime)s agent[{settings.agent_id}] %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    agent = Agent(settings)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    try:
        agent.run()
    except KeyboardInterrupt:
        agent.stop()
