"""`testbed bench alloc`: CRA + CSM solve times and the softmax gap (one JSON object)."""

from __future__ import annotations

import json

import typer


def alloc(
    users: list[int] = typer.Option(
        [20, 100, 1000, 10000], "--users", help="Numbers of users K (repeat the option)."
    ),
    beta: float = typer.Option(0.1, "--beta", min=0.0, help="Energy weight, 1/J."),
    gamma: float = typer.Option(1.0, "--gamma", min=0.0, help="Latency weight, 1/s."),
    cvxpy_max_users: int = typer.Option(1000, "--cvxpy-max-users", help="Skip cvxpy above K."),
    seed: int = typer.Option(0, "--seed", min=0),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print one JSON object."),
) -> None:
    """Time CRA+CSM (softmax path), the exact fast solver and cvxpy; report the gap."""
    from testbed.alloc_bench import benchmark_allocation

    out = benchmark_allocation(
        users, beta=beta, gamma=gamma, seed=seed, cvxpy_max_users=cvxpy_max_users
    )
    if as_json:
        typer.echo(json.dumps(out))
        return
    for r in out["results"]:
        typer.echo(
            f"K={r['users']}: cra_csm {r['cra_csm_ms']:.1f} ms, exact {r['exact_ms']:.1f} ms, "
            f"cvxpy {r['cvxpy_ms']} ms, gap {r['gap_pct']:.4f}%"
        )
