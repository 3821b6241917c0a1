"""`testbed bench phy`: BLER against SNR through the real PHY, per scheme (one JSON object)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer


def phy(
    snr: str = typer.Option("0:28:2", "--snr", help="SNR grid, dB: start:stop:step or a,b,c."),
    blocks: int = typer.Option(40, "--blocks", min=1, max=4096, help="Blocks per point."),
    cfo: float = typer.Option(2e-3, "--cfo", help="Carrier offset, cycles per sample."),
    seed: int = typer.Option(0, "--seed", min=0),
    sample_rate: float = typer.Option(1e6, "--sample-rate", min=1.0, help="For rx_realtime_x."),
    out: Path = typer.Option(None, "--out", help="Also write the JSON (the measured table)."),
    table: Path = typer.Option(
        None, "--table", help="The measured table to compare with (default: the packaged one)."
    ),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print one JSON object."),
) -> None:
    """Block error rate of every MCS through the GNU Radio PHY, and the receiver's speed."""
    from testbed.phy_bench import run_phy_bench

    result = run_phy_bench(
        snr_db=_grid(snr),
        blocks=blocks,
        cfo=cfo,
        seed=seed,
        sample_rate_hz=sample_rate,
        table=None if table is None else str(table),
    )
    text = json.dumps(result)
    if out is not None:
        out.write_text(text + "\n")
    if as_json:
        typer.echo(text)
        return
    for row in result["mcs"]:
        snr = row["measured_snr_at_bler10_db"]
        typer.echo(f"{row['modulation']:>6} {row['code_rate']:>4}: {snr} dB at 10% (measured)")


def _grid(text: str) -> list[float]:
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError("need step > 0 and stop >= start")
            return [float(x) for x in np.arange(start, stop + step / 2, step)]
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise typer.BadParameter(f"{text!r}: {err}", param_hint="--snr") from None
