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
