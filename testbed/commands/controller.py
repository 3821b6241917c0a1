"""`testbed controller serve`: the controller service under uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

app = typer.Typer(help="The central controller (FastAPI under uvicorn).", no_args_is_help=True)


@app.command("serve")
def serve(
    host: str = typer.Option(None, help="Bind address [default: settings, 127.0.0.1]."),
    port: int = typer.Option(None, help="Port [default: settings, 8080]."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    ssl_certfile: Path = typer.Option(
        None, "--ssl-certfile", exists=True, dir_okay=False, help="TLS certificate (PEM)."
    ),
    ssl_keyfile: Path = typer.Option(
        None, "--ssl-keyfile", exists=True, dir_okay=False, help="TLS private key (PEM)."
    ),
) -> None:
    """Serve the REST API; settings come from TESTBED_CONTROLLER_* variables or `.env`.

    With --ssl-certfile and --ssl-keyfile it serves HTTPS (docs/security.md)."""
    import uvicorn
    from pydantic import ValidationError

    from controller.app import create_app
    from controller.server import uvicorn_config
    from controller.settings import ControllerSettings

    try:
        settings = ControllerSettings()
    except ValidationError as err:
        # The messages only: pydantic's own text would quote the input, secrets included.
        reasons = "; ".join(
            e["msg"].removeprefix("Value error, ")
            for e in err.errors(include_input=False, include_url=False)
        )
        typer.echo(f"controller: refusing to start: {reasons}", err=True)
        raise typer.Exit(code=2) from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        typer.echo("controller: --ssl-certfile and --ssl-keyfile go together", err=True)
        raise typer.Exit(code=2)
    tls = {}
    if ssl_certfile is not None:
        tls = {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)}
    config = uvicorn_config(create_app(settings), settings, host, port, log_level, **tls)
    uvicorn.Server(config).run()
