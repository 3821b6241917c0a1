"""The `testbed` command line: one entry point for every part of the testbed.

Each sub-command lives in its own module under ``testbed.commands`` and imports its heavy
dependencies (GNU Radio, torch, cvxpy) inside the command function, so that ``testbed --help``
and the light commands start in a fraction of a second on an edge board.
"""

from __future__ import annotations

import typer

from testbed.commands import (
    agent,
    alloc,
    ap,
    bench,
    controller,
    deploy,
    doctor,
    iq,
    reproduce,
    run,
    spec,
    train,
)

app = typer.Typer(
    name="testbed",
    help="SDR testbed for federated learning over cell-free massive MIMO.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# -- single commands ------------------------------------------------------------------------
app.command("doctor")(doctor.doctor)
app.command("run")(run.run)
app.command("reproduce")(reproduce.reproduce)

# -- command groups (one module each) -------------------------------------------------------
app.add_typer(spec.app, name="spec")
app.add_typer(bench.app, name="bench")
app.add_typer(alloc.app, name="alloc")
app.add_typer(train.app, name="train")
app.add_typer(controller.app, name="controller")
app.add_typer(agent.app, name="agent")
app.add_typer(ap.app, name="ap")
app.add_typer(iq.app, name="iq")
app.add_typer(deploy.app, name="deploy")


def main() -> None:
    """Console-script entry point."""
    app()
