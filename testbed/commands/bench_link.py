"""`testbed bench link`: link dropouts of proposed vs FedAvg over an SNR sweep (one JSON object).

The seeded cell-edge study of :mod:`testbed.link_bench`: plans from the estimated CSI, updates
sent through the simulated world's true channel, a fixed modelled deadline. Every number in
the rows is modelled (system model and link layer), none measured.
"""

from __future__ import annotations

import json
import sys

import typer


def link(
    rounds: int = typer.Option(20, "--rounds", min=1, help="Rounds per (algorithm, SNR)."),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Seed of the world, CSI noise, HARQ draws and power policy."
    ),
    deadline_s: float = typer.Option(
        2.0, "--deadline", min=1e-3, help="Modelled round deadline (link.deadline_s), s."
    ),
    snr_db: list[float] | None = typer.Option(
        None,
        "--snr-db",
        help="radio.snr_override_db values, dB (repeat the option); the geometry's own row "
        "comes first. Default: the built-in sweep.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Bar on stderr."),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print one JSON object."),
) -> None:
    """Link dropout rate, MCS, HARQ retries, latency and energy per algorithm and SNR."""
    from tqdm import tqdm

    from testbed.link_bench import ALGORITHMS, DEFAULT_SNRS_DB, cell_edge_spec, link_study

    snrs = DEFAULT_SNRS_DB if not snr_db else (None, *snr_db)
    total = rounds * len(snrs) * len(ALGORITHMS)
    with tqdm(total=total, desc="link rounds", file=sys.stderr, disable=not progress) as bar:
        out = link_study(
            cell_edge_spec(seed=seed, deadline_s=deadline_s),
            snrs_db=snrs,
            rounds=rounds,
            progress=bar.update,
        )
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"{'algorithm':<10} {'snr_db':>7} {'dropout':>8} {'mcs':>6} {'retries':>8} "
               f"{'latency_s':>10} {'energy_j':>9}")  # fmt: skip
    for r in out["rows"]:
        snr = "geom" if r["snr_db"] is None else f"{r['snr_db']:g}"
        mcs = "-" if r["mean_mcs_index"] is None else f"{r['mean_mcs_index']:.1f}"
        retx = "-" if r["mean_retries"] is None else f"{r['mean_retries']:.2f}"
        typer.echo(
            f"{r['algorithm']:<10} {snr:>7} {r['link_dropout_rate']:>8.3f} {mcs:>6} {retx:>8} "
            f"{r['model_latency_s']:>10.2f} {r['model_energy_j']:>9.2f}"
        )
