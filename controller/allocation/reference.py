"""cvxpy references for CRA and CSM: slow, generic, and what the fast solvers are checked against.

The rate ``B log2(1 + a/B)`` is the perspective of ``log(1 + a)``: in cvxpy ``-rel_entr(B, B + a)``
(exponential cone). Variables are scaled (bandwidth in units of ``B``, frequencies in units of the
largest ``f_max``) so that the conic solver sees numbers near 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from controller.allocation.instance import AllocationInstance, ObjectiveWeights
from protocol.arrays import NDArrayFloat

__all__ = [
    "JointSolution",
    "default_solver",
    "schedule_frequencies_cvxpy",
    "share_edge_cycles_cvxpy",
    "solve_joint_cvxpy",
]

_LN2 = float(np.log(2.0))


def default_solver() -> str:
    """The first installed exponential-cone solver: CLARABEL, ECOS or SCS."""
    installed = cp.installed_solvers()
    for name in ("CLARABEL", "ECOS", "SCS"):
        if name in installed:
            return name
    raise RuntimeError(f"no exponential-cone solver installed (have {installed})")


@dataclass(frozen=True)
class JointSolution:
    """cvxpy's optimum: ``bandwidth_hz``, ``freq_hz`` ``[U]`` (Hz), ``round_latency_s``, value."""

    bandwidth_hz: NDArrayFloat
    freq_hz: NDArrayFloat
    round_latency_s: float
    objective: float


def _solve(problem: cp.Problem, solver: str | None) -> None:
    """Solve with ``solver`` (default: CLARABEL), falling back to the other conic solvers."""
    installed = cp.installed_solvers()
    order = [solver] if solver else [s for s in ("CLARABEL", "ECOS", "SCS") if s in installed]
    failures = []
    for name in order:
        try:
            problem.solve(solver=name)
        except cp.error.SolverError as err:
            failures.append(f"{name}: {err}")
            continue
        if problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return
        failures.append(f"{name}: status {problem.status}")
    raise RuntimeError("cvxpy reference failed: " + "; ".join(failures))


def solve_joint_cvxpy(
    inst: AllocationInstance, power_w: NDArrayFloat, *, solver: str | None = None
) -> JointSolution:
    """The round problem of DESIGN section 5 in ``(B, f, T)`` for fixed ``power_w`` ``[U]`` W.

    Frequencies are continuous in ``[f_min, f_max]`` (the convex problem before level rounding).
    """
    n, b_tot, s = inst.n_users, inst.bandwidth_hz, inst.update_bits
    a = inst.snr_bandwidth_hz(np.asarray(power_w, dtype=np.float64)) / b_tot
    fs = float(np.max(inst.f_max_hz))
    w = inst.workload_cycles
    b = cp.Variable(n, pos=True)
    rn = cp.Variable(n, pos=True)
    g = cp.Variable(n, pos=True)
    t = cp.Variable(pos=True)
    comm = (s / b_tot) * cp.inv_pos(rn)
    cons = [
        rn <= -cp.rel_entr(b, b + a) / _LN2,
        comm + cp.multiply(w / fs, cp.inv_pos(g)) <= t,
        cp.sum(b) <= 1.0,
        g >= inst.f_min_hz / fs,
        g <= inst.f_max_hz / fs,
    ]
    wts = inst.weights
    energy = cp.sum(
        cp.multiply(power_w * s / b_tot, cp.inv_pos(rn))
        + cp.multiply(inst.kappa * w * fs**2, cp.square(g))
    )
    problem = cp.Problem(cp.Minimize(wts.gamma * t + wts.beta * energy), cons)
    _solve(problem, solver)
    return JointSolution(
        bandwidth_hz=np.maximum(np.asarray(b.value, dtype=np.float64), 0.0) * b_tot,
        freq_hz=np.clip(np.asarray(g.value, dtype=np.float64) * fs, inst.f_min_hz, inst.f_max_hz),
        round_latency_s=float(np.asarray(t.value)),
        objective=float(problem.value),
    )


def schedule_frequencies_cvxpy(
    comm_latency_s: NDArrayFloat,
    workload_cycles: NDArrayFloat,
    f_min_hz: NDArrayFloat,
    f_max_hz: NDArrayFloat,
    kappa: NDArrayFloat,
    weights: ObjectiveWeights,
    *,
    solver: str | None = None,
) -> tuple[NDArrayFloat, float]:
    """CSM in cvxpy: ``min gamma T + beta sum kappa W f^2`` s.t. deadlines and boxes.

    Returns:
        ``(freq_hz [U] Hz, T s)``.
    """
    n = comm_latency_s.shape[0]
    fs = float(np.max(f_max_hz))
    g = cp.Variable(n, pos=True)
    t = cp.Variable()
    cons = [
        comm_latency_s + cp.multiply(workload_cycles / fs, cp.inv_pos(g)) <= t,
        g >= f_min_hz / fs,
        g <= f_max_hz / fs,
    ]
    energy = cp.sum(cp.multiply(kappa * workload_cycles * fs**2, cp.square(g)))
    problem = cp.Problem(cp.Minimize(weights.gamma * t + weights.beta * energy), cons)
    _solve(problem, solver)
    return np.clip(np.asarray(g.value) * fs, f_min_hz, f_max_hz), float(np.asarray(t.value))


def share_edge_cycles_cvxpy(
    comm_latency_s: NDArrayFloat,
    workload_cycles: NDArrayFloat,
    capacity_hz: float,
    *,
    solver: str | None = None,
) -> tuple[NDArrayFloat, float]:
    """Shared edge cycles in cvxpy: ``min T`` s.t. ``tau + W / C <= T``, ``sum C <= C_max``.

    Returns:
        ``(cycles_per_s [U] Hz, T s)``.
    """
    n = comm_latency_s.shape[0]
    c = cp.Variable(n, pos=True)
    t = cp.Variable()
    cons = [
        comm_latency_s + cp.multiply(workload_cycles / capacity_hz, cp.inv_pos(c)) <= t,
        cp.sum(c) <= 1.0,
    ]
    problem = cp.Problem(cp.Minimize(t), cons)
    _solve(problem, solver)
    return np.asarray(c.value) * capacity_hz, float(np.asarray(t.value))
