"""Benchmark of CRA + CSM: solve times of the fast paths and cvxpy, and the softmax gap.

Instances are random (seeded), with continuous frequency ranges so that the cvxpy reference and
the fast paths solve the same convex problem; powers are ``P_max``. Times are medians over
``repeats`` runs, in milliseconds; the gap is the softmax path's objective over the reference
(cvxpy where it ran, else the exact fast solver), in percent.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from controller.allocation.instance import Allocation, ObjectiveWeights
from controller.allocation.pipeline import allocate_for_power
from controller.allocation.scenario import random_instance

__all__ = ["benchmark_allocation"]


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return out, statistics.median(times)


def benchmark_allocation(
    users: Sequence[int] = (20, 100, 1000, 10000),
    *,
    beta: float = 0.1,
    gamma: float = 1.0,
    seed: int = 0,
    cvxpy_max_users: int = 1000,
    repeats: int = 3,
) -> dict[str, Any]:
    """``{"results": [{"users", "cra_csm_ms", "exact_ms", "cvxpy_ms", "gap_pct", ...}]}``.

    Args:
        users: the ``K`` values.
        beta, gamma: objective weights (1/J, 1/s).
        cvxpy_max_users: skip cvxpy above this ``K`` (``cvxpy_ms`` is then null).
        repeats: timing repeats of the fast paths (cvxpy runs once).
    """
    from controller.allocation.reference import default_solver, solve_joint_cvxpy
    from controller.allocation.system_model import evaluate

    rng = np.random.default_rng(seed)
    rows = []
    for k in users:
        inst = random_instance(
            rng, k, weights=ObjectiveWeights(beta=beta, gamma=gamma), levels="continuous"
        )
        p = inst.p_max_w.copy()
        reps = repeats if k <= 1000 else 1
        soft, soft_ms = _timed(partial(allocate_for_power, inst, p, bandwidth="softmax"), reps)
        exact, exact_ms = _timed(partial(allocate_for_power, inst, p, bandwidth="exact"), reps)
        assert isinstance(soft, Allocation)
        assert isinstance(exact, Allocation)
        row: dict[str, Any] = {
            "users": k,
            "cra_csm_ms": soft_ms,
            "exact_ms": exact_ms,
            "cvxpy_ms": None,
            "objective_softmax": soft.objective,
            "objective_exact": exact.objective,
            "objective_cvxpy": None,
        }
        reference = exact.objective
        if k <= cvxpy_max_users:
            ref, cvx_ms = _timed(partial(solve_joint_cvxpy, inst, p), 1)
            cvx_obj = evaluate(inst, ref.bandwidth_hz, p, ref.freq_hz).objective
            row |= {"cvxpy_ms": cvx_ms, "objective_cvxpy": cvx_obj, "solver": default_solver()}
            row["speedup_vs_cvxpy"] = cvx_ms / soft_ms
            reference = cvx_obj
        row["gap_pct"] = 100.0 * (soft.objective / reference - 1.0)
        row["exact_gap_pct"] = 100.0 * (exact.objective / reference - 1.0)
        rows.append(row)
    return {"beta": beta, "gamma": gamma, "seed": seed, "results": rows}


def gap_statistics(
    n_instances: int = 200, *, seed: int = 0, max_users: int = 50, levels: str = "continuous"
) -> dict[str, Any]:
    """Softmax-path objective gap to cvxpy and to the exact solver over random instances.

    Each instance draws ``U`` in ``[2, max_users]``, ``beta`` in {0, 0.05, 0.5, 2}, gains and
    powers (``[0.05, 1] P_max``) at random; gaps are in percent (positive: softmax worse). The
    cvxpy gap is computed with continuous frequencies (``levels="continuous"`` only).
    """
    from controller.allocation.reference import solve_joint_cvxpy
    from controller.allocation.system_model import evaluate

    rng = np.random.default_rng(seed)
    gaps_cvx, gaps_exact, t_soft, t_exact, t_cvx = [], [], [], [], []
    for _ in range(n_instances):
        n = int(rng.integers(2, max_users + 1))
        beta = float(rng.choice([0.0, 0.05, 0.5, 2.0]))
        low = float(rng.uniform(-135.0, -95.0))
        inst = random_instance(
            rng,
            n,
            weights=ObjectiveWeights(beta=beta),
            gain_db=(low, low + float(rng.uniform(0.0, 30.0))),
            levels=levels,
        )
        p = inst.p_max_w * rng.uniform(0.05, 1.0, n)
        soft, ms = _timed(partial(allocate_for_power, inst, p, bandwidth="softmax"), 1)
        t_soft.append(ms)
        exact, ms = _timed(partial(allocate_for_power, inst, p, bandwidth="exact"), 1)
        t_exact.append(ms)
        gaps_exact.append(100.0 * (soft.objective / exact.objective - 1.0))
        if levels == "continuous":
            ref, ms = _timed(partial(solve_joint_cvxpy, inst, p), 1)
            t_cvx.append(ms)
            ref_obj = evaluate(inst, ref.bandwidth_hz, p, ref.freq_hz).objective
            gaps_cvx.append(100.0 * (soft.objective / ref_obj - 1.0))

    def stats(x: list[float]) -> dict[str, float] | None:
        if not x:
            return None
        a = np.asarray(x)
        return {
            "mean": float(a.mean()),
            "median": float(np.median(a)),
            "p95": float(np.quantile(a, 0.95)),
            "max": float(a.max()),
            "min": float(a.min()),
        }

    return {
        "instances": n_instances,
        "levels": levels,
        "gap_pct_vs_cvxpy": stats(gaps_cvx),
        "gap_pct_vs_exact": stats(gaps_exact),
        "softmax_ms": stats(t_soft),
        "exact_ms": stats(t_exact),
        "cvxpy_ms": stats(t_cvx),
    }
