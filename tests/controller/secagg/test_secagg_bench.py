"""`testbed bench secagg` at a tiny size: one JSON object with the promised keys."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from testbed.commands.bench_secagg import secagg


def test_bench_prints_one_json_object_with_the_promised_keys() -> None:
    app = typer.Typer()
    app.command()(secagg)
    args = [
        "--clients",
        "8",
        "--dim",
        "300",
        "--dropout",
        "0.25",
        "--drop-stage",
        "spread",
        "--all-cores",
    ]
    out = CliRunner().invoke(app, [*args, "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    for key in ("client_mask_s", "server_unmask_s", "bytes_per_client", "server_peak_rss_mb"):
        assert report[key] > 0
    assert report["exact"] is True
    assert report["survivors"] == 6  # dropped before advertising and before sharing keys
    assert report["bytes_ratio"] > 1.0
