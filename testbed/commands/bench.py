"""`testbed bench ...`: benchmarks that print one JSON object each.

Each benchmark lives in its own module; register it here with one line.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)
