"""The fast bandwidth path: one Newton iteration on the whole KKT system of the round problem.

With the powers fixed, the energy-weighted round problem of :mod:`.bandwidth`

    minimise   gamma T + beta sum_u (P_u t_u(B_u) + kappa_u W_u f_u^2)
    subject to t_u(B_u) + W_u / f_u <= T,   sum_u B_u <= B,   f_min_u <= f_u <= f_max_u

has ``U + 2`` unknowns that matter: each user's log-bandwidth ``x_u = ln B_u``, the round latency
``T`` and the log-price of bandwidth ``m = ln mu``. Its KKT conditions are one equation per user
(which one depends on the user's *regime*, below) and two coupling equations,

    F1 = ln sum_u B_u - ln B = 0,        F2 = ln(sum_u nu_u / gamma) = 0,

where ``nu_u`` is the multiplier of user ``u``'s latency constraint. The nested exact solver
(:func:`~controller.allocation.bandwidth.solve_bandwidth_exact`) solves these by three nested
one-dimensional searches; here every iteration takes one Newton step on all ``U + 2`` unknowns at
once. The Jacobian is an arrow (diagonal per user, two dense rows and columns for ``T`` and
``m``), so the step costs ``O(U)``: each user's correction is eliminated into a 2x2 system for
``(dT, dm)`` (a Schur complement). From the uniform split it converges quadratically in about
five evaluations of the system on the benchmark instances.

Regimes, for given ``(T, m)`` (exact: decided from the user's stationarity residual at the ends
of its bandwidth interval, which are closed-form inverse rates):

- ``pinned``: at ``f_max`` with the least bandwidth meeting ``T`` (``x_u = lo(T)``);
- ``interior``: frequency strictly inside its range, ``f = W / (T - t(B))``; stationarity
  ``(beta P + 2 beta kappa f^3) |t'(B)| = mu``;
- ``kink``: at ``f_min`` and exactly on time (``x_u = kink(T)``);
- ``early``: at ``f_min`` and finishing early, ``beta P |t'(B)| = mu``, ``nu = 0``.

The user's residual is written in log form, ``g = m - ln|t'(B)| - ln Q``, which is nearly linear
in ``x`` over many decades. Safeguards keep ``T`` above the least feasible round latency and
bound the price step; a run that does not converge returns ``None`` and the caller falls back to
the nested solver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.allocation.instance import AllocationInstance
from controller.allocation.system_model import rate_equation_root
from protocol.arrays import NDArrayBool, NDArrayFloat

__all__ = ["KktProblem", "KktSolution", "least_round_latency", "solve_kkt_newton"]

_LN2 = float(np.log(2.0))
#: Width (in ln B) of a regime that never reaches f_min: bandwidth beyond any optimum.
_KINK_CAP = 60.0
#: Per-user residual the inner steps aim at, relative to the outer residual (inexact Newton).
_FORCING = 1e-1


@dataclass(frozen=True)
class KktProblem:
    """The round problem for fixed powers, per-user arrays ``[U]`` float64.

    Attributes:
        snr_bw_hz: ``a_u = P_u G_u / N0``, Hz.
        workload_cycles: ``W_u = c_u D_u``, cycles.
        f_min_hz, f_max_hz: frequency range, Hz.
        beta_kappa: ``beta kappa_u`` (objective units per cycle Hz^2).
        beta_power: ``beta P_u`` (objective units per second of upload).
        update_bits: ``S``, bit.
        bandwidth_hz: ``B``, Hz.
        gamma: latency weight, 1/s (0: energy only, no deadline).
    """

    snr_bw_hz: NDArrayFloat
    workload_cycles: NDArrayFloat
    f_min_hz: NDArrayFloat
    f_max_hz: NDArrayFloat
    beta_kappa: NDArrayFloat
    beta_power: NDArrayFloat
    update_bits: float
    bandwidth_hz: float
    gamma: float

    @classmethod
    def from_instance(cls, inst: AllocationInstance, power_w: NDArrayFloat) -> KktProblem:
        """The problem of ``inst`` with the powers ``power_w`` (``[U]`` W) fixed."""
        w = inst.weights
        return cls(
            snr_bw_hz=inst.snr_bandwidth_hz(power_w),
            workload_cycles=inst.workload_cycles,
            f_min_hz=inst.f_min_hz,
            f_max_hz=inst.f_max_hz,
            beta_kappa=w.beta * inst.kappa,
            beta_power=w.beta * power_w,
            update_bits=inst.update_bits,
            bandwidth_hz=inst.bandwidth_hz,
            gamma=w.gamma,
        )


@dataclass(frozen=True)
class KktSolution:
    """Bandwidths ``[U]`` (Hz, summing to ``B``), ``T`` (s), the price ``mu`` and iterations."""

    bandwidth_hz: NDArrayFloat
    round_latency_s: float
    price: float
    iterations: int


@dataclass(frozen=True)
class _Terms:
    """Upload-latency terms at log-bandwidth ``x`` (``[U]`` each).

    ``t`` upload latency (s); ``eps = d ln r / d ln B`` in (0, 1); ``ln_slope = ln|t'(B)|``;
    ``curv = d ln|t'| / d ln B`` (< 0).
    """

    t: NDArrayFloat
    eps: NDArrayFloat
    ln_slope: NDArrayFloat
    curv: NDArrayFloat


def _terms(x: NDArrayFloat, a: NDArrayFloat, s_bits: float) -> _Terms:
    b = np.exp(x)
    z = a / b
    l1p = np.log1p(z)
    q = z / (1.0 + z)
    # ln(1+z) - z/(1+z) cancels for small SNR: its series there.
    lmq = np.where(z > 1e-3, l1p - q, z * z * (0.5 - z * (2.0 / 3.0 - 0.75 * z)))
    eps = lmq / l1p
    t = (s_bits * _LN2) / (b * l1p)
    return _Terms(
        t=t,
        eps=eps,
        ln_slope=np.log(t * eps) - x,
        curv=-(q * q) / lmq - 2.0 * eps,
    )


def _log_bandwidth_for(tau: NDArrayFloat, a: NDArrayFloat, s_ln2: float) -> NDArrayFloat:
    """``ln B`` of the least bandwidth uploading in ``tau``; ``+inf`` where none suffices.

    Runs without its own ``np.errstate``: callers hold one for the whole solve.
    """
    c = s_ln2 / (a * tau)
    ok = (tau > 0) & (c < 1.0)
    y = rate_equation_root(np.where(ok, c, 0.5))
    return np.where(ok, np.log(a) - np.log(np.expm1(y)), np.inf)


def _uniform_split_latency(
    a: NDArrayFloat, comp_latency_s: NDArrayFloat, s_bits: float, bandwidth_hz: float
) -> float:
    """Round latency (s) with ``B / U`` Hz each and the given computation latencies ``[U]``."""
    n = a.shape[0]
    x_eq = np.full(n, np.log(bandwidth_hz / n))
    return float(np.max(_terms(x_eq, a, s_bits).t + comp_latency_s))


def least_round_latency(
    snr_bw_hz: NDArrayFloat,
    comp_latency_s: NDArrayFloat,
    update_bits: float,
    bandwidth_hz: float,
    *,
    rtol: float = 1e-13,
    max_iter: int = 100,
) -> tuple[float, NDArrayFloat]:
    """Least round latency: ``T`` with ``sum_u B_u(T) = B``, ``B_u(T)`` the inverse rate.

    Safeguarded Newton in ``sigma = ln(T - T_floor)`` (``T_floor``: the round latency with
    unlimited bandwidth), where ``ln sum_u B_u`` is nearly linear; the derivative is analytic,
    ``d ln B_u / dT = -1 / (tau_u eps_u)``. Falls back to bisection inside the bracket.

    Args:
        snr_bw_hz: ``[U]`` ``a_u``, Hz.
        comp_latency_s: ``[U]`` computation latency of each user (at ``f_max``), s.
        update_bits: ``S``, bit.
        bandwidth_hz: ``B``, Hz.
    Returns:
        ``(T, B)``: ``T`` in s and ``[U]`` bandwidths (Hz) with ``sum B <= bandwidth_hz``.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _least_round_latency(
            snr_bw_hz, comp_latency_s, update_bits, bandwidth_hz, rtol=rtol, max_iter=max_iter
        )


def _least_round_latency(
    a: NDArrayFloat,
    comp_latency_s: NDArrayFloat,
    s_bits: float,
    bandwidth_hz: float,
    *,
    rtol: float,
    max_iter: int,
) -> tuple[float, NDArrayFloat]:
    s_ln2 = s_bits * _LN2
    t_floor = float(np.max(s_ln2 / a + comp_latency_s))
    log_total = float(np.log(bandwidth_hz))
    t_uniform = _uniform_split_latency(a, comp_latency_s, s_bits, bandwidth_hz)
    lo, hi = -np.inf, float(np.log(t_uniform - t_floor)) + 1e-12  # G(lo) > 0 >= G(hi)
    sigma = hi
    for _ in range(max_iter):
        tau = t_floor + np.exp(sigma) - comp_latency_s
        x = _log_bandwidth_for(tau, a, s_ln2)
        top = float(np.max(x))
        bx = np.exp(x - top)
        total = float(np.sum(bx))
        g = top + float(np.log(total)) - log_total
        if g > 0:
            lo = sigma
        else:
            hi = sigma
            if -g <= rtol:
                break
        if hi - lo <= rtol:
            break
        # d ln B_u / d sigma = -(T - T_floor) / (tau_u eps_u)
        eps = _terms(x, a, s_bits).eps
        dg = -float(np.exp(sigma)) * float(np.sum(bx / (tau * eps))) / total
        step = sigma - g / dg if dg < 0 and np.isfinite(dg) else np.nan
        if not lo < step < hi:
            step = 0.5 * (lo + hi) if np.isfinite(lo) else hi - 4.0
        sigma = step
    tau = t_floor + np.exp(hi) - comp_latency_s
    b = np.exp(_log_bandwidth_for(tau, a, s_ln2))
    b = b * min(1.0, bandwidth_hz / float(np.sum(b)))
    return t_floor + float(np.exp(hi)), b


@dataclass(frozen=True)
class _Residual:
    """Each user's stationarity residual at ``(T, m, x)`` and its partial derivatives ``[U]``.

    ``resid = m - ln|t'| - ln q`` with ``q = beta P + nu_int``; ``d_resid = d resid / dx``
    (> 0); ``k_t = -d nu_int / dT``; ``nu_int = 2 beta kappa f^3`` for interior users, else 0;
    ``slack = T - t`` (s) for interior users, else 1.
    """

    terms: _Terms
    resid: NDArrayFloat
    d_resid: NDArrayFloat
    nu_int: NDArrayFloat
    q: NDArrayFloat
    k_t: NDArrayFloat
    slack: NDArrayFloat

    def newton_step(self, interior: NDArrayBool) -> NDArrayFloat:
        """Each user's Newton step in ``x`` on its own residual, ``[U]``.

        Where the frequency is interior, ``q`` grows like ``slack^-3`` near ``f_max`` and the
        residual is closer to linear in ``ln slack`` than in ``x`` (Newton in ``x`` would crawl
        towards the root from the tight side): the step is Newton's in ``ln slack``, mapped
        back to ``x`` to first order, ``dx = slack expm1(-lambda) / (t eps)`` with ``lambda``
        Newton's step in ``ln slack``. It equals Newton's for small steps, is longer towards
        more slack and shorter towards less, and never empties the slack.
        """
        tm = self.terms
        dt_dx = tm.t * tm.eps  # -d t / dx, s
        lam = self.resid * dt_dx / (self.slack * self.d_resid)
        return np.where(interior, self.slack * np.expm1(-lam) / dt_dx, -self.resid / self.d_resid)


@dataclass(frozen=True)
class _State:
    """One point ``(T, m, x)`` of the iteration with its residuals and Newton data.

    ``x``, ``resid``, ``alpha``, ``beta``, ``c``, ``nu_x``, ``nu_t``, ``nu_m``, ``wgt`` are
    ``[U]``; under a step ``(dT, dm)`` user ``u``'s log-bandwidth moves by
    ``alpha + beta dT + c dm``. ``f1 = ln(sum B / B)``; ``nu_sum`` is ``sum_u nu_u``.
    """

    t_round: float
    m: float
    x: NDArrayFloat
    free: NDArrayBool
    resid: NDArrayFloat
    alpha: NDArrayFloat
    beta: NDArrayFloat
    c: NDArrayFloat
    nu_x: NDArrayFloat
    nu_t: NDArrayFloat
    nu_m: NDArrayFloat
    wgt: NDArrayFloat
    f1: float
    nu_sum: float
    gamma: float

    @property
    def f2(self) -> float:
        """``ln(sum_u nu_u / gamma)``: the latency multipliers against the latency weight."""
        return float(np.log(self.nu_sum / self.gamma))

    @property
    def worst(self) -> float:
        """Largest per-user stationarity residual (log form)."""
        return float(np.max(np.abs(self.resid), where=self.free, initial=0.0))

    @property
    def merit(self) -> float:
        """Squared residual norm of the whole KKT system (users averaged)."""
        r = np.where(self.free, self.resid, 0.0)
        return float(np.dot(r, r)) / r.shape[0] + self.f1 * self.f1 + self.f2 * self.f2


class _Joint:
    """The KKT system of a :class:`KktProblem` with a deadline (``gamma > 0``).

    Every method runs under the caller's ``np.errstate`` (one for the whole solve).

    Args:
        prob: the problem.
        inner_iters: most per-user Newton steps at fixed ``(T, m)`` in one evaluation, so that
            the step on ``(T, m)`` sees each user near its own optimum.
    """

    def __init__(self, prob: KktProblem, *, inner_iters: int = 8) -> None:
        self.prob = prob
        self.inner_iters = inner_iters
        self.w_fast = prob.workload_cycles / prob.f_max_hz
        self.w_slow = prob.workload_cycles / prob.f_min_hz
        bp, bk = prob.beta_power, prob.beta_kappa
        self.ln_bp = np.log(bp)
        # both ends of every user's interval in one pass: [U] at f_max, then [U] at f_min
        self.w_ends = np.concatenate([self.w_fast, self.w_slow])
        self.a_ends = np.concatenate([prob.snr_bw_hz, prob.snr_bw_hz])
        f_max, f_min = prob.f_max_hz, prob.f_min_hz
        self.ln_q_fast = np.log(bp + 2.0 * bk * f_max * f_max * f_max)
        self.ln_q_slow = np.log(bp + 2.0 * bk * f_min * f_min * f_min)
        self.log_total = float(np.log(prob.bandwidth_hz))
        self.s_ln2 = prob.update_bits * _LN2
        self.t_floor = float(np.max(self.s_ln2 / prob.snr_bw_hz + self.w_fast))

    def start(self) -> _State:
        """The round latency of the uniform split at ``f_max``, everyone pinned at the least
        bandwidth meeting it; the price from ``F2 = 0``."""
        p = self.prob
        a, s = p.snr_bw_hz, p.update_bits
        t_round = _uniform_split_latency(a, self.w_fast, s, p.bandwidth_hz)
        x = _log_bandwidth_for(t_round - self.w_fast, a, self.s_ln2)
        ln_slope = _terms(x, a, s).ln_slope
        m = float(np.log(p.gamma + np.sum(p.beta_power)) - np.log(np.sum(np.exp(-ln_slope))))
        return self.evaluate(t_round, m, x, inner_tol=1e-1)

    def _residual(
        self, x: NDArrayFloat, t_round: float, m: float, interior: NDArrayBool
    ) -> _Residual:
        p = self.prob
        tm = _terms(x, p.snr_bw_hz, p.update_bits)
        slack = np.where(interior, t_round - tm.t, 1.0)
        f = p.workload_cycles / slack
        nu_int = np.where(interior, 2.0 * p.beta_kappa * f * f * f, 0.0)
        q = p.beta_power + nu_int
        k_t = 3.0 * nu_int / slack
        return _Residual(
            terms=tm,
            resid=m - tm.ln_slope - np.log(q),
            d_resid=k_t * tm.t * tm.eps / q - tm.curv,
            nu_int=nu_int,
            q=q,
            k_t=k_t,
            slack=slack,
        )

    def evaluate(self, t_round: float, m: float, x: NDArrayFloat, *, inner_tol: float) -> _State:
        """Regimes, each user's optimum for ``(T, m)`` (from ``x``, to ``inner_tol``), and the
        residuals and linearisation there."""
        p = self.prob
        a, s, bp = p.snr_bw_hz, p.update_bits, p.beta_power
        # the ends of each user's bandwidth interval at this T, and the exact regimes
        n = a.shape[0]
        ends = _log_bandwidth_for(t_round - self.w_ends, self.a_ends, self.s_ln2)
        x_lo = ends[:n]
        x_k = np.minimum(ends[n:], x_lo + _KINK_CAP)
        ln_slope = _terms(np.concatenate([x_lo, x_k]), self.a_ends, s).ln_slope
        ln_slope_lo, ln_slope_k = ln_slope[:n], ln_slope[n:]
        pinned = m - ln_slope_lo - self.ln_q_fast >= 0
        interior = ~pinned & (m - ln_slope_k - self.ln_q_slow >= 0)
        kink = ~pinned & ~interior & (m - ln_slope_k - self.ln_bp >= 0)
        early = ~pinned & ~interior & ~kink
        free = interior | early
        # per-user safeguarded Newton at fixed (T, m) inside each free user's interval
        left = np.where(interior, x_lo, x_k)
        right = np.where(interior, x_k, np.inf)
        x = np.where(pinned, x_lo, np.where(kink, x_k, np.minimum(np.maximum(x, left), right)))
        r = self._residual(x, t_round, m, interior)
        for _ in range(self.inner_iters):
            active = free & ~(np.abs(r.resid) <= inner_tol)
            if not active.any():
                break
            left = np.where(r.resid < 0, x, left)
            right = np.where(r.resid > 0, x, right)
            step = x + r.newton_step(interior)
            inside = (step >= left) & (step <= right)
            # bisect, but move at most e^2 in bandwidth (the far ends may be decades away)
            mid = 0.5 * (left + right)
            fallback = np.where(r.resid < 0, np.minimum(mid, x + 2.0), np.maximum(mid, x - 2.0))
            x = np.where(active, np.where(inside, step, fallback), x)
            r = self._residual(x, t_round, m, interior)
        tm = r.terms
        v = np.exp(m - tm.ln_slope)  # mu / |t'|
        nu = np.where(interior, r.nu_int, np.where(early, 0.0, v - bp))
        top = float(x.max())
        bx = np.exp(x - top)
        total = float(bx.sum())
        return _State(
            t_round=t_round,
            m=m,
            x=x,
            free=free,
            resid=r.resid,
            alpha=np.where(free, -r.resid / r.d_resid, 0.0),
            beta=np.where(free, -(r.k_t / r.q) / r.d_resid, -1.0 / (tm.t * tm.eps)),
            c=np.where(free, -1.0 / r.d_resid, 0.0),
            nu_x=np.where(interior, -r.k_t * tm.t * tm.eps, np.where(early, 0.0, -v * tm.curv)),
            nu_t=-r.k_t,
            nu_m=np.where(free, 0.0, v),
            wgt=bx / total,
            f1=top + float(np.log(total)) - self.log_total,
            nu_sum=max(float(nu.sum()), 1e-300 * p.gamma),
            gamma=p.gamma,
        )

    def direction(self, st: _State) -> tuple[float, float]:
        """The Newton step ``(dT, dm)`` from the 2x2 Schur complement of the arrow Jacobian."""
        g = st.nu_sum
        a11, a12 = float(np.dot(st.wgt, st.beta)), float(np.dot(st.wgt, st.c))
        a21 = float(np.dot(st.nu_x, st.beta) + st.nu_t.sum()) / g
        a22 = float(np.dot(st.nu_x, st.c) + st.nu_m.sum()) / g
        r1 = -st.f1 - float(np.dot(st.wgt, st.alpha))
        r2 = -st.f2 - float(np.dot(st.nu_x, st.alpha)) / g
        det = a11 * a22 - a12 * a21
        if det == 0 or not np.isfinite(det):  # nobody holds the round back: shorten it
            return -0.5 * (st.t_round - self.t_floor), 0.0
        return (r1 * a22 - a12 * r2) / det, (a11 * r2 - a21 * r1) / det

    def moved(self, st: _State, d_t: float, d_m: float, step: float, *, inner_tol: float) -> _State:
        """The state after a fraction ``step`` of the Newton step, kept above ``T_floor``."""
        d_t, d_m = step * d_t, step * min(max(d_m, -2.0), 2.0)
        t_new = st.t_round + d_t
        if t_new <= self.t_floor:
            t_new = self.t_floor + 0.5 * (st.t_round - self.t_floor)
        d_t = t_new - st.t_round
        dx = np.minimum(np.maximum(step * st.alpha + st.beta * d_t + st.c * d_m, -5.0), 5.0)
        x = st.x + np.where(np.isfinite(dx), dx, 0.0)
        return self.evaluate(t_new, st.m + d_m, x, inner_tol=inner_tol)


def solve_kkt_newton(
    prob: KktProblem, *, tol: float = 1e-5, max_iter: int = 50
) -> KktSolution | None:
    """Solve the energy-weighted round problem (``beta > 0``) by joint Newton steps.

    Each iteration takes the full Newton step on ``(T, m)`` when it lowers the squared residual
    norm of the whole system, else backtracks (regime changes make the system only piecewise
    smooth; the line search stops the cycles a plain Newton iteration can fall into there).
    The users' own equations are solved only as far as the outer residual warrants (inexact
    Newton). Once every residual is below ``tol`` the last Newton step is taken without
    evaluating it: convergence is quadratic, so it lands within about ``tol^2`` (and the
    objective, stationary there, within about ``tol^4``).

    Args:
        prob: the problem; ``beta_power`` must be > 0.
        tol: every user's log residual, ``|F1|`` and ``|F2|`` below it: take the last step.
        max_iter: most evaluations of the system (iterations plus backtracking steps).
    Returns:
        The solution, or ``None`` when it did not converge within ``max_iter``.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if prob.gamma == 0:
            return _energy_only(prob, tol=tol, max_iter=max_iter)
        system = _Joint(prob)
        st = system.start()
        evals = 1
        while evals < max_iter:
            outer = max(abs(st.f1), abs(st.f2))
            d_t, d_m = system.direction(st)
            if not (np.isfinite(d_t) and np.isfinite(d_m)):
                return None
            if outer <= tol and st.worst <= tol:  # the last step, taken without evaluating it
                x = st.x + st.alpha + st.beta * d_t + st.c * d_m
                b = np.exp(x - x.max())
                return KktSolution(
                    bandwidth_hz=b * (prob.bandwidth_hz / float(b.sum())),
                    round_latency_s=st.t_round + d_t,
                    price=float(np.exp(st.m + d_m)),
                    iterations=evals,
                )
            inner_tol = min(1e-1, max(0.1 * tol, _FORCING * outer * outer))
            step, merit = 1.0, st.merit
            while evals < max_iter:
                cand = system.moved(st, d_t, d_m, step, inner_tol=inner_tol)
                evals += 1
                if cand.merit < (1.0 - 1e-4 * step) * merit or step < 1e-3:
                    st = cand
                    break
                step *= 0.25
    return None


def _energy_only(prob: KktProblem, *, tol: float, max_iter: int) -> KktSolution | None:
    """``gamma = 0``: no deadline, every board at ``f_min``; Newton on ``m`` and the ``x_u``."""
    a, s = prob.snr_bw_hz, prob.update_bits
    ln_bp = np.log(prob.beta_power)
    log_total = float(np.log(prob.bandwidth_hz))
    n = a.shape[0]
    x = np.full(n, log_total - np.log(n))
    m = float(np.mean(_terms(x, a, s).ln_slope + ln_bp))
    for it in range(1, max_iter + 1):
        tm = _terms(x, a, s)
        resid = m - tm.ln_slope - ln_bp
        alpha, c = resid / tm.curv, 1.0 / tm.curv
        top = float(np.max(x))
        bx = np.exp(x - top)
        total = float(np.sum(bx))
        wgt = bx / total
        f1 = top + float(np.log(total)) - log_total
        if float(np.max(np.abs(resid))) <= tol and abs(f1) <= tol:
            b = np.exp(x)
            t = tm.t + prob.workload_cycles / prob.f_min_hz
            return KktSolution(
                bandwidth_hz=b * (prob.bandwidth_hz / float(np.sum(b))),
                round_latency_s=float(np.max(t)),
                price=float(np.exp(m)),
                iterations=it,
            )
        d_m = min(max((-f1 - float(np.sum(wgt * alpha))) / float(np.sum(wgt * c)), -2.0), 2.0)
        x = x + np.clip(alpha + c * d_m, -5.0, 5.0)
        m += d_m
    return None
