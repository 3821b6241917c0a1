"""`testbed iq ...`: look at the APs' SigMF recordings."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="IQ recordings (SigMF) of the AP cluster.", no_args_is_help=True)


@app.command("show")
def show(
    recording: Path = typer.Argument(..., help="An AP's recording (.sigmf-meta or its base)."),
    out: Path = typer.Option(None, "--out", help="PNG to write [default: beside the recording]."),
    max_s: float = typer.Option(0.05, "--max-s", min=1e-6, help="Spectrogram span, s."),
    frames: int = typer.Option(12, "--frames", min=1, max=10_000, help="Frames correlated."),
) -> None:
    """Spectrogram, pilot correlation per UE and CSI magnitude per antenna, to a PNG."""
    from testbed.iq_show import show as draw

    try:
        path = draw(recording, out, max_s=max_s, frames=frames)
    except ValueError as err:
        typer.echo(f"testbed iq show: {err}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(str(path))
