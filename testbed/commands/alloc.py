"""`testbed alloc ...`: solve one round's resource allocation from a JSON instance."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from controller.allocation.instance import Allocation, AllocationInstance

app = typer.Typer(help="Resource allocation (CRA + CSM) of one FL round.", no_args_is_help=True)


class BandwidthChoice(StrEnum):
    softmax = "softmax"
    exact = "exact"


class PowerChoice(StrEnum):
    max = "max"
    drl = "drl"
    convex = "convex"


@app.command("solve")
def solve(
    instance: Path = typer.Argument(..., help="JSON instance (see `controller.allocation`)."),
    bandwidth: BandwidthChoice = typer.Option(
        BandwidthChoice.softmax, "--bandwidth", help="Softmax relaxation or the exact solver."
    ),
    power: PowerChoice = typer.Option(
        PowerChoice.max, "--power", help="Full power, the DRL policy, or the convex power step."
    ),
    policy: str | None = typer.Option(
        None, "--policy", help="Trained policy (NAME in $TESTBED_POLICY_DIR, or a file)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Allocate bandwidth, power and CPU frequency for every user of INSTANCE."""
    from testbed.alloc_file import InstanceError, load_instance

    try:
        inst = load_instance(instance).to_instance()
    except InstanceError as err:
        typer.echo(f"{err.source}: INVALID ({len(err.problems)} problem(s))", err=True)
        for line in err.problems:
            typer.echo(f"  - {line}", err=True)
        raise typer.Exit(code=2) from None
    if power is PowerChoice.drl and policy is None:
        typer.echo("--power drl needs --policy NAME (train one with `testbed train`)", err=True)
        raise typer.Exit(code=2)
    if policy is not None and power is not PowerChoice.drl:
        typer.echo("--policy is only used with --power drl", err=True)
        raise typer.Exit(code=2)
    alloc = _solve(inst, bandwidth.value, power.value, policy)
    out = alloc.to_dict()
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(
        f"{inst.n_users} users: round latency {alloc.round_latency_s:.4g} s, "
        f"energy {alloc.energy_j.sum():.4g} J, objective {alloc.objective:.6g}"
    )
    typer.echo(
        f"{'user':>5} {'B (kHz)':>10} {'P (mW)':>8} {'f (MHz)':>8} {'T (s)':>8} {'E (J)':>8}"
    )
    for i in range(inst.n_users):
        typer.echo(
            f"{i:>5} {alloc.bandwidth_hz[i] / 1e3:>10.1f} {alloc.power_w[i] * 1e3:>8.1f} "
            f"{alloc.freq_hz[i] / 1e6:>8.1f} {alloc.latency_s[i]:>8.4f} {alloc.energy_j[i]:>8.4f}"
        )


def _solve(inst: AllocationInstance, bandwidth: str, power: str, policy: str | None) -> Allocation:
    """Run the chosen pipeline (heavy imports here, not at module import)."""
    from controller.allocation.fusion import fuse
    from controller.allocation.pipeline import allocate_for_power
    from controller.allocation.power import convex_power, max_power

    if power == "max":
        return allocate_for_power(inst, max_power(inst), bandwidth=bandwidth)  # type: ignore[arg-type]
    if power == "convex":
        return convex_power(inst, bandwidth=bandwidth)  # type: ignore[arg-type]
    from controller.policy.policy import PowerPolicy
    from controller.policy.store import policy_path

    assert policy is not None
    try:
        pol = PowerPolicy.load(policy_path(policy))
    except (FileNotFoundError, ValueError) as err:
        typer.echo(f"--policy: {err}", err=True)
        raise typer.Exit(code=2) from None
    return fuse(inst, pol.act(inst, explore=False).power_w, resolve=bandwidth)  # type: ignore[arg-type]
