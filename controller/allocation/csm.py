"""CSM: computation scheduling, the frequency part of the round problem (DESIGN section 6).

Given the upload latencies ``tau_u = T^comm_u`` fixed by CRA, the frequencies solve

    minimise   gamma T + beta sum_u kappa_u W_u f_u^2
    subject to tau_u + W_u / f_u <= T,   f_min_u <= f_u <= f_max_u.

For a fixed deadline ``T`` every user's best frequency is the least that meets it,
``f_u(T) = clip(W_u / (T - tau_u), f_min_u, f_max_u)`` (energy grows with ``f``), so the problem
is one-dimensional and convex in ``T`` on ``[T_0, inf)``, ``T_0 = max_u (tau_u + W_u / f_max_u)``:

    phi(T) = gamma T + beta sum_u kappa_u W_u f_u(T)^2,
    phi'(T) = gamma - 2 beta sum_{u: f_u(T) interior} kappa_u f_u(T)^3.

With ``beta = 0`` the optimum is ``T_0`` (the straggler at full speed); with energy weighted
``T*`` moves to the root of ``phi'`` (exact: safeguarded Newton with the analytic ``phi''``; the
paper's projected-gradient form: projected gradient steps on ``T`` with the frequencies as the
projection of each user onto its feasible box). Frequencies are then rounded up to each board's
DVFS levels, which keeps every user within ``T*``. :func:`share_edge_cycles` is the variant where
training is offloaded to an edge server whose ``C_max`` cycles/s are shared:
``sum_u C_u <= C_max``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from controller.allocation.instance import ObjectiveWeights
from protocol.arrays import NDArrayFloat

__all__ = [
    "EdgeShare",
    "FrequencySchedule",
    "least_frequency",
    "round_up_to_levels",
    "schedule_frequencies",
    "schedule_frequencies_pgd",
    "share_edge_cycles",
]


@dataclass(frozen=True)
class FrequencySchedule:
    """CSM's answer: ``freq_hz`` ``[U]`` (Hz, continuous) and the deadline ``round_latency_s``."""

    freq_hz: NDArrayFloat
    round_latency_s: float


def least_frequency(
    deadline_s: float,
    comm_latency_s: NDArrayFloat,
    workload_cycles: NDArrayFloat,
    f_min_hz: NDArrayFloat,
    f_max_hz: NDArrayFloat,
) -> NDArrayFloat:
    """Least frequency meeting ``T``: ``clip(W_u / (T - tau_u), f_min_u, f_max_u)``, ``[U]`` Hz."""
    with np.errstate(divide="ignore", invalid="ignore"):
        slack = deadline_s - comm_latency_s
        f = np.where(slack > 0, workload_cycles / np.where(slack > 0, slack, 1.0), np.inf)
    # snap round-off below f_max up to it (the straggler runs flat out, not 1 ulp below)
    f = np.where(f >= f_max_hz * (1.0 - 1e-12), f_max_hz, f)
    return np.clip(f, f_min_hz, f_max_hz)


class _Phi:
    """``phi(T)`` and ``phi'(T)`` of the module docstring for one set of users."""

    def __init__(
        self,
        tau: NDArrayFloat,
        w: NDArrayFloat,
        f_min: NDArrayFloat,
        f_max: NDArrayFloat,
        kappa: NDArrayFloat,
        weights: ObjectiveWeights,
    ) -> None:
        self.tau, self.w, self.f_min, self.f_max = tau, w, f_min, f_max
        self.bk = weights.beta * kappa
        self.gamma = weights.gamma
        self.t0 = float(np.max(tau + w / f_max))
        self.t_slow = float(np.max(tau + w / f_min))

    def value(self, t: float) -> float:
        f = least_frequency(t, self.tau, self.w, self.f_min, self.f_max)
        return self.gamma * t + float(np.sum(self.bk * self.w * f * f))

    def slope(self, t: float) -> float:
        """``phi'(T)``, 1."""
        return self.slope_and_curvature(t)[0]

    def slope_and_curvature(self, t: float) -> tuple[float, float]:
        """``phi'(T)`` and ``phi''(T) = 6 beta sum_interior kappa_u f_u^4 / W_u`` (1/s)."""
        with np.errstate(divide="ignore"):
            f_raw = self.w / np.maximum(t - self.tau, 0.0)
        inside = (f_raw > self.f_min * (1.0 + 1e-9)) & (f_raw <= self.f_max * (1.0 + 1e-9))
        bkf3 = np.where(inside, self.bk * f_raw * f_raw * f_raw, 0.0)
        return self.gamma - 2.0 * float(np.sum(bkf3)), 6.0 * float(np.sum(bkf3 * f_raw / self.w))

    def minimiser(self, hint: float | None) -> float:
        """``T*``, the minimiser of the convex ``phi`` on ``[T_0, T_slow]``.

        A ``hint`` within ``1e-9`` (relative) of ``T*`` is taken after two evaluations of
        ``phi'``: at the optimum of the joint problem many users sit exactly on their kink, so
        ``phi'`` jumps there and bisection would need dozens of steps to move ``T`` by less
        than a nanosecond per second. Otherwise the root of ``phi'`` is searched from ``hint``.
        """
        if hint is not None:
            d = 1e-9 * hint
            inside = self.t0 < hint - d and hint + d < self.t_slow
            if inside and self.slope(hint - d) < 0 <= self.slope(hint + d):
                return hint + d
        if self.slope(self.t0) >= 0:
            return self.t0
        if self.gamma == 0 or self.slope(self.t_slow) <= 0:
            return self.t_slow
        guess = 0.5 * (self.t0 + self.t_slow) if hint is None else hint
        return self.root(self.t0, self.t_slow, guess)

    def root(self, lo: float, hi: float, guess: float) -> float:
        """The root of the increasing ``phi'`` in ``[lo, hi]`` (``phi'(lo) < 0 < phi'(hi)``).

        Safeguarded Newton from ``guess`` (rtsafe): a bisection step wherever Newton would
        leave the bracket or shrink too slowly, so a root at a jump of ``phi'`` (users reaching
        ``f_min``) is found as well; stops when a step is below ``1e-14 + 1e-13 T`` s.
        """
        t = min(max(guess, lo), hi)
        dx_old = hi - lo
        for _ in range(200):
            g, dg = self.slope_and_curvature(t)
            if g == 0.0:
                break
            if g < 0:
                lo = t
            else:
                hi = t
            newton = t - g / dg if dg > 0 else np.nan
            if lo < newton < hi and abs(newton - t) <= 0.5 * dx_old:
                dx, t = abs(newton - t), newton
            else:
                dx, t = 0.5 * (hi - lo), 0.5 * (lo + hi)
            dx_old = dx
            if dx <= 1e-14 + 1e-13 * t:
                break
        return t


def schedule_frequencies(
    comm_latency_s: NDArrayFloat,
    workload_cycles: NDArrayFloat,
    f_min_hz: NDArrayFloat,
    f_max_hz: NDArrayFloat,
    kappa: NDArrayFloat,
    weights: ObjectiveWeights,
    *,
    deadline_hint_s: float | None = None,
) -> FrequencySchedule:
    """Exact CSM: the optimal deadline ``T*`` and the least frequency of each user meeting it.

    Args:
        comm_latency_s: ``[U]`` upload latencies ``tau_u``, s (finite).
        workload_cycles: ``[U]`` ``W_u = c_u D_u``, cycles.
        f_min_hz, f_max_hz: ``[U]`` frequency bounds, Hz.
        kappa: ``[U]`` effective switched capacitance, J/(cycle Hz^2).
        weights: ``beta`` (1/J) and ``gamma`` (1/s) of the objective.
        deadline_hint_s: where the search for ``T*`` starts (e.g. the round latency CRA fitted
            its bandwidth to), s; any value gives the same answer, a good one sooner.
    Returns:
        Continuous frequencies ``[U]`` (Hz) and ``T*`` (s); round them with
        :func:`round_up_to_levels`.
    """
    phi = _Phi(comm_latency_s, workload_cycles, f_min_hz, f_max_hz, kappa, weights)
    t = phi.t0 if weights.beta == 0 else phi.minimiser(deadline_hint_s)
    f = least_frequency(t, comm_latency_s, workload_cycles, f_min_hz, f_max_hz)
    return FrequencySchedule(freq_hz=f, round_latency_s=float(t))


def schedule_frequencies_pgd(
    comm_latency_s: NDArrayFloat,
    workload_cycles: NDArrayFloat,
    f_min_hz: NDArrayFloat,
    f_max_hz: NDArrayFloat,
    kappa: NDArrayFloat,
    weights: ObjectiveWeights,
    *,
    max_iter: int = 500,
    rtol: float = 1e-12,
) -> FrequencySchedule:
    """CSM by projected gradient descent (the paper's form); agrees with the exact solution.

    Gradient steps on the deadline ``T`` with Armijo backtracking, each projected onto the
    feasible set ``[T_0, T_slow]``; the frequencies at each step are the projection of each
    user's energy-optimal frequency (as slow as possible) onto the box it must stay in to meet
    ``T``: ``[max(f_min, W / (T - tau)), f_max]``. Arguments as :func:`schedule_frequencies`.
    """
    phi = _Phi(comm_latency_s, workload_cycles, f_min_hz, f_max_hz, kappa, weights)
    lo, hi = phi.t0, phi.t_slow
    t = lo
    span = max(hi - lo, 1e-12 * lo)
    step = span / (abs(phi.slope(t)) + phi.gamma + 1e-300)
    for _ in range(max_iter):
        g = phi.slope(t)
        v = phi.value(t)
        while True:  # Armijo backtracking on the projected step
            t_new = min(max(t - step * g, lo), hi)
            if phi.value(t_new) <= v - 1e-4 * g * (t - t_new) or step < 1e-30 * span:
                break
            step *= 0.5
        moved = abs(t_new - t)
        t = t_new
        step *= 2.0
        if moved <= rtol * t:
            break
    f = least_frequency(t, comm_latency_s, workload_cycles, f_min_hz, f_max_hz)
    return FrequencySchedule(freq_hz=f, round_latency_s=float(t))


def round_up_to_levels(freq_hz: NDArrayFloat, levels_hz: NDArrayFloat) -> NDArrayFloat:
    """Round each frequency up to its board's next DVFS level (rows of NaN: left as is).

    Args:
        freq_hz: ``[U]`` frequencies, Hz, each within its board's range.
        levels_hz: ``[U, L]`` ascending levels per user, Hz, NaN-padded.
    Returns:
        ``[U]`` Hz: the least level ``>= f_u`` (to within 1e-9 relative), else ``f_u``.
    """
    f = np.asarray(freq_hz, dtype=np.float64)
    has = ~np.isnan(levels_hz[:, 0])
    if not has.any():  # continuous ranges only
        return f.copy()
    with np.errstate(invalid="ignore"):
        ok = levels_hz >= f[:, None] * (1.0 - 1e-9)
    ok_any = ok.any(axis=1)
    first = np.argmax(ok, axis=1)
    top = np.nanmax(np.where(has[:, None], levels_hz, -np.inf), axis=1)
    chosen = np.where(ok_any, levels_hz[np.arange(f.shape[0]), first], top)
    return np.where(has, chosen, f)


@dataclass(frozen=True)
class EdgeShare:
    """Shared edge-server cycles: ``cycles_per_s`` ``[U]`` (Hz) and the deadline (s)."""

    cycles_per_s: NDArrayFloat
    round_latency_s: float


def share_edge_cycles(
    comm_latency_s: NDArrayFloat, workload_cycles: NDArrayFloat, capacity_hz: float
) -> EdgeShare:
    """Offloaded training: share ``C_max`` cycles/s so that the round ends soonest.

    Solves ``min T`` s.t. ``tau_u + W_u / C_u <= T``, ``sum_u C_u <= C_max``: every user gets
    just ``C_u = W_u / (T - tau_u)``, and ``T`` is the root of ``sum_u C_u(T) = C_max``.

    Args:
        comm_latency_s: ``[U]`` upload latencies, s (the update goes up before training).
        workload_cycles: ``[U]`` cycles of each user's training task.
        capacity_hz: ``C_max``, cycles/s of the edge server, > 0.
    """
    if not capacity_hz > 0:
        raise ValueError(f"`capacity_hz` must be > 0, got {capacity_hz!r}.")
    tau = np.asarray(comm_latency_s, dtype=np.float64)
    w = np.asarray(workload_cycles, dtype=np.float64)
    t_floor = float(np.max(tau))

    def excess(log_slack: float) -> float:
        c = w / (t_floor + np.exp(log_slack) - tau)
        return float(np.log(np.sum(c))) - float(np.log(capacity_hz))

    # sum C(T) <= sum W / (T - t_floor) and >= max W / (T - min tau): bracket the root.
    lo = float(np.log(np.max(w) / capacity_hz)) - 1.0
    hi = float(np.log(np.sum(w) / capacity_hz + 1e-300)) + 1.0
    while excess(lo) < 0:
        lo -= 5.0
    x = brentq(excess, lo, hi, xtol=1e-14, rtol=1e-13, maxiter=200)
    c = w / (t_floor + np.exp(x) - tau)
    c *= min(1.0, capacity_hz / float(np.sum(c)))
    return EdgeShare(cycles_per_s=c, round_latency_s=float(np.max(tau + w / c)))
