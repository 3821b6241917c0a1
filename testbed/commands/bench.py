"""`testbed bench ...`: benchmarks that print one JSON object each.

Each benchmark lives in its own module; register it here with one line.
"""

from __future__ import annotations

import typer

from testbed.commands import (
    bench_alloc,
    bench_chaos,
    bench_csi,
    bench_fedmarl,
    bench_link,
    bench_load,
    bench_phy,
    bench_round,
    bench_scale,
    bench_secagg,
)

app = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)
app.command("secagg")(bench_secagg.secagg)
app.command("csi")(bench_csi.csi)
app.command("alloc")(bench_alloc.alloc)
app.command("link")(bench_link.link)
app.command("load")(bench_load.load)
app.command("chaos")(bench_chaos.chaos)
app.command("round")(bench_round.round_)
app.command("scale")(bench_scale.scale)
app.command("fedmarl")(bench_fedmarl.fedmarl)
app.command("phy")(bench_phy.phy)
