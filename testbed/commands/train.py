"""`testbed train ...`: offline training in simulation, through the link layer."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Train controller policies in simulation.", no_args_is_help=True)


@app.command("power-policy")
def power_policy(
    name: str = typer.Option(
        "default", "--name", help="Saved as NAME.pt in $TESTBED_POLICY_DIR (default ./policies)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write the policy here instead."),
    iterations: int = typer.Option(200, "--iterations", min=1, help="Actor-critic updates."),
    batch: int = typer.Option(8, "--batch", min=1, help="Simulated rounds per update."),
    episode_rounds: int = typer.Option(
        2, "--episode-rounds", min=1, help="Rounds per episode on one instance (link state)."
    ),
    users_min: int = typer.Option(4, "--users-min", min=1, help="Fewest users per round."),
    users_max: int = typer.Option(16, "--users-max", min=1, help="Most users per round."),
    beta: float = typer.Option(0.5, "--beta", min=0.0, help="Energy weight, 1/J."),
    gamma: float = typer.Option(1.0, "--gamma", min=0.0, help="Latency weight, 1/s."),
    gain_db_min: float = typer.Option(-130.0, "--gain-db-min", help="Weakest gain G, dB."),
    gain_db_max: float = typer.Option(-100.0, "--gain-db-max", help="Strongest gain G, dB."),
    update_bits: float | None = typer.Option(
        None, "--update-bits", min=1.0, help="Bits per update (default: 1-8 Mbit per round)."
    ),
    fixed_scenario: bool = typer.Option(
        False, "--fixed-scenario", help="Train on one seeded round instead of fresh ones."
    ),
    bandwidth_head: bool = typer.Option(
        False, "--bandwidth-head", help="Also learn bandwidth (the drl_ra baseline)."
    ),
    seed: int = typer.Option(0, "--seed", min=0),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Train the actor-critic power policy in simulation and save it.

    Every sampled action goes through the link layer of a run (MCS, HARQ, deadline; the spec's
    default ``link:`` section) over a fading true channel; the file is what ``algorithm.policy``
    of an experiment spec names.
    """
    if gain_db_min > gain_db_max:
        typer.echo(f"--gain-db-min ({gain_db_min}) exceeds --gain-db-max ({gain_db_max})", err=True)
        raise typer.Exit(code=2)
    if users_min > users_max:
        typer.echo(f"--users-min ({users_min}) exceeds --users-max ({users_max})", err=True)
        raise typer.Exit(code=2)
    from controller.allocation.instance import ObjectiveWeights
    from controller.policy.policy import PowerPolicy, PowerPolicyConfig
    from controller.policy.store import policy_path
    from controller.policy.training import TrainConfig, train_power_policy

    try:
        target = out if out is not None else policy_path(name)
    except ValueError as err:
        typer.echo(f"--name: {err}", err=True)
        raise typer.Exit(code=2) from None
    cfg = TrainConfig(
        iterations=iterations,
        batch=batch,
        episode_rounds=episode_rounds,
        users=(users_min, users_max),
        fixed_scenario=fixed_scenario,
        weights=ObjectiveWeights(beta=beta, gamma=gamma),
        gain_db=(gain_db_min, gain_db_max),
        update_bits=update_bits,
        seed=seed,
    )
    start = PowerPolicy(PowerPolicyConfig(seed=seed, bandwidth_head=bandwidth_head))
    policy, report = train_power_policy(cfg, start)
    path = policy.save(target)
    result = {"policy": str(path), **report.to_dict()}
    if as_json:
        typer.echo(json.dumps(result))
    else:
        curve = ", ".join(f"{r:.3f}" for r in report.curve())
        typer.echo(
            f"saved {path}: reward/user {report.final_reward:.4f} "
            f"(full power {report.full_power_reward:.4f}, "
            f"random {report.random_power_reward:.4f}); "
            f"link dropouts {report.link_dropout_rate:.1%} "
            f"(full power {report.full_power_dropout_rate:.1%}, "
            f"random {report.random_power_dropout_rate:.1%}); {report.seconds:.1f} s\n"
            f"learning curve (mean sampled reward/user, up to 10 chunks of iterations): {curve}"
        )
