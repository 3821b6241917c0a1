"""CRA bandwidth: the exact fast solver and the softmax relaxation (DESIGN sections 5 and 6).

With the powers ``P`` fixed, the round problem

    minimise   gamma T + beta sum_u (P_u t_u(B_u) + kappa_u W_u f_u^2)
    subject to t_u(B_u) + W_u / f_u <= T,   sum_u B_u <= B,   f_min_u <= f_u <= f_max_u

is convex (``t_u(B) = S / r_u(B)`` is convex and decreasing). Its KKT conditions, with ``nu_u``
the multiplier of user ``u``'s latency constraint and ``mu`` the price of one hertz, read

    sum_u nu_u = gamma,   (beta P_u + nu_u) |t_u'(B_u)| = mu,   nu_u = 2 beta kappa_u f_u^3
    (f_u interior),   sum_u B_u = B.

The exact solver nests three monotone one-dimensional searches: the round latency ``T`` (Brent on
``sum nu(T) = gamma``), the bandwidth price ``mu`` (Newton on ``sum B(T, mu) = B``), and each
user's bandwidth (a vectorised safeguarded Newton on ``d/dB`` of its Lagrangian). With
``beta = 0`` it collapses to a search on ``T`` with the closed-form inverse rate function
(:func:`~controller.allocation.kkt_newton.least_round_latency`): every user gets just the
bandwidth it needs to finish at ``T`` at full speed.

The softmax relaxation writes ``B_u = B exp(lambda_u) / sum_j exp(lambda_j)`` with the logits
``lambda_u = ln B_u(theta)``, the per-user KKT response to the duals ``theta = (T, mu)``, fitted
by Newton steps on the whole KKT system at once (:mod:`~controller.allocation.kkt_newton`):
strictly positive, summing to ``B`` exactly whatever the fit, and within a fraction of a percent
of the optimum (see ``bench.py`` and the property tests). With energy weighted the two paths
share no search code, so each checks the other; with ``beta = 0`` both are the least-latency
search, checked against cvxpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from controller.allocation.instance import AllocationInstance
from controller.allocation.kkt_newton import KktProblem, least_round_latency, solve_kkt_newton
from controller.allocation.system_model import (
    bandwidth_for_latency,
    comm_latency,
    comm_latency_slope,
)
from protocol.arrays import NDArrayBool, NDArrayFloat

__all__ = [
    "BandwidthSolution",
    "SolverTolerance",
    "softmax",
    "solve_bandwidth_exact",
    "solve_bandwidth_softmax",
    "uniform_bandwidth",
]

_LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class BandwidthSolution:
    """Bandwidth of every user and the duals that produced it.

    Attributes:
        bandwidth_hz: ``[U]`` float64, Hz, positive, summing to at most ``B``.
        round_latency_s: the round latency ``T`` the duals were fitted for, s.
        price: the bandwidth price ``mu`` (objective units per Hz); ``nan`` when ``beta = 0``.
        logits: ``[U]`` softmax logits (softmax path only).
    """

    bandwidth_hz: NDArrayFloat
    round_latency_s: float
    price: float
    logits: NDArrayFloat | None = None


@dataclass(frozen=True)
class SolverTolerance:
    """Effort of the nested searches; the defaults make the exact solver exact to ~1e-10.

    Attributes:
        rtol: relative tolerance of the outer searches (T, mu).
        max_outer: most evaluations of each outer Brent search.
        newton_iters: most safeguarded-Newton iterations per user.
        residual: per-user stationarity residual (log form, dimensionless) counted as solved.
    """

    rtol: float = 1e-11
    max_outer: int = 100
    newton_iters: int = 80
    residual: float = 1e-12


_EXACT = SolverTolerance()


def uniform_bandwidth(inst: AllocationInstance) -> NDArrayFloat:
    """``B / U`` for everyone, ``[U]`` Hz (the baselines without CRA)."""
    return np.full(inst.n_users, inst.bandwidth_hz / inst.n_users)


def softmax(logits: NDArrayFloat, total: float) -> NDArrayFloat:
    """``total * exp(l) / sum exp(l)``, computed stably; ``[U]``, strictly positive."""
    z = np.exp(logits - np.max(logits))
    return total * z / np.sum(z)


def _check_power(inst: AllocationInstance, power_w: NDArrayFloat) -> NDArrayFloat:
    p = np.asarray(power_w, dtype=np.float64)
    if p.shape != (inst.n_users,):
        raise ValueError(f"`power_w` must have shape ({inst.n_users},), got {p.shape}.")
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("`power_w` must be finite and > 0 for every scheduled user.")
    if np.any(p > inst.p_max_w * (1 + 1e-12)):
        raise ValueError("`power_w` exceeds `p_max_w`.")
    return p


# -- beta > 0: nested searches on T and mu, per-user Newton ----------------------------------


@dataclass
class _Weighted:
    """The energy-weighted problem's per-user data (``[U]`` arrays) and scalars.

    For a round latency ``T`` a user's bandwidth axis splits in two smooth regimes: from
    ``B_lo(T)`` (the least bandwidth, at ``f_max``) to ``B_k(T)`` (where its frequency reaches
    ``f_min``) the frequency ``W / (T - t(B))`` is interior; beyond ``B_k`` it sits at ``f_min``
    and the user finishes early. Both ends are closed-form (inverse rate), so each user's
    Lagrangian derivative is solved by a safeguarded Newton on one smooth piece, or lands on
    ``B_lo`` or on the kink ``B_k``.
    """

    a: NDArrayFloat
    w: NDArrayFloat
    f_min: NDArrayFloat
    f_max: NDArrayFloat
    bk: NDArrayFloat  # beta * kappa
    bp: NDArrayFloat  # beta * P
    s_bits: float
    b_total: float
    gamma: float
    tol: SolverTolerance
    u0: NDArrayFloat | None = None  # warm start (log bandwidth)
    sensitivity: NDArrayFloat | None = None  # d B / d ln(mu) of the last response, Hz
    log_mu0: float | None = None  # warm start of the price search
    _t: float = float("nan")
    _lo: NDArrayFloat | None = None
    _kink: NDArrayFloat | None = None

    def _prepare(self, t_round: float) -> tuple[NDArrayFloat, NDArrayFloat]:
        """``ln B_lo(T)`` and ``ln B_k(T)`` (cached per ``T``), ``[U]`` each."""
        if t_round != self._t or self._lo is None or self._kink is None:
            if np.isfinite(t_round):
                lo = np.log(
                    bandwidth_for_latency(t_round - self.w / self.f_max, self.a, self.s_bits)
                )
                with np.errstate(divide="ignore"):
                    kink = np.log(
                        bandwidth_for_latency(t_round - self.w / self.f_min, self.a, self.s_bits)
                    )
                # f never reaches f_min when T - W/f_min is below the upload floor: cap the
                # interior regime at e^60 times B_lo (bandwidth beyond any optimum).
                kink = np.clip(kink, lo, lo + 60.0)
            else:  # no deadline: everyone at f_min, the interior regime is empty
                lo = np.full(self.a.shape, np.log(self.b_total) - 60.0)
                kink = lo.copy()
            self._t, self._lo, self._kink = t_round, lo, kink
        return self._lo, self._kink

    def _grad(
        self, u: NDArrayFloat, t_round: float, mu: float, interior: NDArrayBool
    ) -> tuple[NDArrayFloat, NDArrayFloat]:
        """Stationarity residual in log form, and its slope in ``ln B``, in regime ``interior``.

        ``g = -ln(|t'(B)| Q(B) / mu)`` with ``Q = beta P + 2 beta kappa f^3`` (interior) or
        ``beta P`` (at ``f_min``): increasing in ``ln B``, zero where ``dL/dB = 0``, and nearly
        linear in ``ln B`` over many decades, so Newton converges in a few steps.
        """
        b = np.exp(u)
        s = self.s_bits
        x = self.a / b
        l1p = np.log1p(x)
        r = b * l1p / _LN2
        dr = (l1p - x / (1.0 + x)) / _LN2
        ddr = -(x * x) / ((1.0 + x) ** 2 * b * _LN2)
        dt = -s * dr / (r * r)
        ddt = s * (2.0 * dr * dr - r * ddr) / (r**3)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            f = np.where(interior, self.w / (t_round - s / r), 0.0)
            q = self.bp + 2.0 * self.bk * f**3
            dq = 6.0 * self.bk * f**4 * dt / self.w
            q = np.where(interior, q, self.bp)
            dq = np.where(interior, dq, 0.0)
            g = -(np.log(-dt) + np.log(q) - np.log(mu))
            dg = -b * (ddt / dt + dq / q)
        return g, dg

    def response(self, t_round: float, mu: float) -> NDArrayFloat:
        """Each user's Lagrangian-optimal bandwidth (Hz) at round latency T and price mu."""
        lo, kink = self._prepare(t_round)
        has_a = kink > lo
        yes = np.ones(lo.shape, dtype=bool)
        no = ~yes
        g_lo, _ = self._grad(lo, t_round, mu, yes)
        g_ka, _ = self._grad(np.where(has_a, kink, lo), t_round, mu, has_a)
        g_kb, _ = self._grad(kink, t_round, mu, no)
        pinned = (g_lo >= 0) & has_a  # at f_max with the least bandwidth
        at_kink = ~pinned & (g_ka < 0) & (g_kb >= 0)
        regime_a = ~pinned & has_a & (g_ka >= 0)
        solve = ~pinned & ~at_kink & np.isfinite(lo)
        left = np.where(regime_a, lo, kink)
        right = np.where(regime_a, kink, np.maximum(kink + 1.0, np.log(self.b_total)))
        for _ in range(80):
            g_r, _ = self._grad(right, t_round, mu, regime_a)
            grow = solve & ~regime_a & (g_r < 0)
            if not np.any(grow):
                break
            left = np.where(grow, right, left)
            right = np.where(grow, right + 2.0, right)
        mid = 0.5 * (left + right)
        u = mid if self.u0 is None else np.where((self.u0 > left) & (self.u0 < right), self.u0, mid)
        g_prev = np.full(u.shape, np.inf)
        for _ in range(self.tol.newton_iters):
            g, dg = self._grad(u, t_round, mu, regime_a)
            active = solve & ~(np.abs(g) <= self.tol.residual)
            if not np.any(active):
                break
            left = np.where(g < 0, u, left)
            right = np.where(g >= 0, u, right)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = u - g / dg
            # rtsafe: bisect where Newton leaves the bracket or |g| does not shrink enough.
            bad = ~np.isfinite(step) | (step <= left) | (step >= right)
            bad |= np.abs(g) > 0.7 * np.abs(g_prev)
            u = np.where(active, np.where(bad, 0.5 * (left + right), step), u)
            g_prev = np.where(bad, np.inf, g)
        u = np.where(pinned, lo, np.where(at_kink, kink, u))
        _, dg = self._grad(u, t_round, mu, regime_a)
        b = np.exp(u)
        # d B_u / d ln(mu) = -B_u / (dg/du) where the user sits at a smooth stationary point.
        with np.errstate(divide="ignore", invalid="ignore"):
            self.sensitivity = np.where(solve & (dg > 0), -b / dg, 0.0)
        self.u0 = u
        return b

    def price_for(self, t_round: float) -> tuple[float, NDArrayFloat]:
        """The price mu at which the users' responses use exactly ``B`` Hz, and the responses.

        Newton on ``ln sum_u B_u(mu) = ln B`` in ``ln mu`` with the analytic sensitivity of the
        responses, safeguarded by a bracket (the sum falls as the price rises).
        """
        log_b = float(np.log(self.b_total))
        if self.log_mu0 is None:  # first guess: marginal values at the uniform split
            b_eq = np.full(self.a.shape, self.b_total / self.a.shape[0])
            slope = np.abs(comm_latency_slope(b_eq, self.a, self.s_bits))
            self.log_mu0 = float(np.log(np.mean((self.bp + self.gamma / b_eq.size) * slope)))
        x = self.log_mu0
        lo, hi = -np.inf, np.inf  # F(lo) > 0 > F(hi)
        b = self.response(t_round, float(np.exp(x)))
        for _ in range(self.tol.max_outer):
            total = float(np.sum(b))
            f = float(np.log(total)) - log_b
            if abs(f) <= self.tol.rtol:
                break
            if f > 0:
                lo = x
            else:
                hi = x
            assert self.sensitivity is not None
            df = float(np.sum(self.sensitivity)) / total
            step = x - f / df if df < 0 else x + (2.0 if f > 0 else -2.0)
            step = min(max(step, x - 4.0), x + 4.0)
            if not (lo < step < hi) or not np.isfinite(step):
                step = (
                    0.5 * (lo + hi)
                    if np.isfinite(lo) and np.isfinite(hi)
                    else (x + 4.0 if f > 0 else x - 4.0)
                )
            x = step
            b = self.response(t_round, float(np.exp(x)))
        self.log_mu0 = x
        return float(np.exp(x)), b

    def multipliers(self, b: NDArrayFloat, mu: float) -> NDArrayFloat:
        """Latency multipliers ``nu_u = max(0, mu / |t'(B_u)| - beta P_u)``, ``[U]``."""
        slope = np.abs(comm_latency_slope(b, self.a, self.s_bits))
        return np.maximum(0.0, mu / slope - self.bp)


def _solve_weighted(
    inst: AllocationInstance, power_w: NDArrayFloat, tol: SolverTolerance
) -> BandwidthSolution:
    wts = inst.weights
    a = inst.snr_bandwidth_hz(power_w)
    w = inst.workload_cycles
    prob = _Weighted(
        a=a,
        w=w,
        f_min=inst.f_min_hz,
        f_max=inst.f_max_hz,
        bk=wts.beta * inst.kappa,
        bp=wts.beta * power_w,
        s_bits=inst.update_bits,
        b_total=inst.bandwidth_hz,
        gamma=wts.gamma,
        tol=tol,
    )
    t_min, _ = least_round_latency(a, w / inst.f_max_hz, inst.update_bits, inst.bandwidth_hz)
    # Energy only: nobody is held to a deadline; T is the slowest user's latency.
    mu_free, b_free = prob.price_for(np.inf)
    t_free = float(np.max(comm_latency(b_free, a, inst.update_bits) + w / inst.f_min_hz))
    best: dict[str, object] = {}

    def surplus(t_round: float) -> float:
        mu, b = prob.price_for(t_round)
        best["sol"] = (t_round, mu, b)
        return float(np.sum(prob.multipliers(b, mu))) - wts.gamma

    if wts.gamma == 0:  # energy only
        t_star, mu, b = t_free, mu_free, b_free
    elif t_free <= t_min * (1 + 1e-9):  # the energy-optimal split already meets T_min
        t_star, b = least_round_latency(a, w / inst.f_max_hz, inst.update_bits, inst.bandwidth_hz)
        mu = float("nan")
    else:
        lo = t_min * (1 + 1e-9)
        for _ in range(5):  # the bracket's low end must hold the round back (surplus > 0)
            if surplus(lo) > 0:
                break
            lo = t_min + 1e-3 * (lo - t_min)
        if surplus(lo) <= 0:
            t_star = lo
        elif surplus(t_free) >= 0:
            # Past t_free every board idles at f_min (sum nu = 0): the multipliers jump there
            # from at least gamma to 0, so the energy-only split's deadline is the optimum.
            t_star = t_free
        else:
            t_star = brentq(
                surplus,
                lo,
                t_free,
                xtol=1e-15,
                rtol=tol.rtol * 10,
                maxiter=tol.max_outer,
                disp=False,
            )
        if best["sol"][0] != t_star:  # type: ignore[index]
            surplus(t_star)
        _, mu, b = best["sol"]  # type: ignore[misc]
    assert b is not None
    b = np.asarray(b) * min(1.0, inst.bandwidth_hz / float(np.sum(b)))
    return BandwidthSolution(bandwidth_hz=b, round_latency_s=float(t_star), price=float(mu))


def solve_bandwidth_exact(
    inst: AllocationInstance, power_w: NDArrayFloat, *, tol: SolverTolerance = _EXACT
) -> BandwidthSolution:
    """The exact bandwidth of the round problem for fixed powers (fast solver, no cvxpy).

    Args:
        inst: the instance, ``U`` users.
        power_w: ``[U]`` transmit powers, W, in ``(0, P_max]``.
        tol: effort of the nested searches.
    Returns:
        The optimal ``[U]`` bandwidths (Hz), summing to ``B``; frequencies follow from
        :func:`~controller.allocation.csm.schedule_frequencies`.
    """
    p = _check_power(inst, power_w)
    wts = inst.weights
    if wts.beta == 0:
        a = inst.snr_bandwidth_hz(p)
        t, b = least_round_latency(
            a, inst.workload_cycles / inst.f_max_hz, inst.update_bits, inst.bandwidth_hz
        )
        spare = inst.bandwidth_hz - float(np.sum(b))
        b = b + spare * b / np.sum(b)  # leftover bandwidth only shortens uploads
        b *= min(1.0, inst.bandwidth_hz / float(np.sum(b)))
        return BandwidthSolution(bandwidth_hz=b, round_latency_s=t, price=float("nan"))
    return _solve_weighted(inst, p, tol)


def solve_bandwidth_softmax(inst: AllocationInstance, power_w: NDArrayFloat) -> BandwidthSolution:
    """The softmax relaxation ``B_u = B softmax(lambda)_u`` with logits from joint dual steps.

    The logits are ``lambda_u = ln B_u``, each user's KKT response to the duals (round latency
    ``T``; bandwidth price ``mu`` when energy is weighted), fitted by Newton steps on the whole
    KKT system at once (:func:`~controller.allocation.kkt_newton.solve_kkt_newton`; with
    ``beta = 0`` the least-latency search). Whatever the fit, the bandwidths are positive and
    sum to ``B``. Should the joint iteration not converge, the exact nested solver supplies
    the logits instead.

    Args:
        inst: the instance, ``U`` users.
        power_w: ``[U]`` transmit powers, W, in ``(0, P_max]``.
    Returns:
        ``[U]`` bandwidths (Hz) with their logits.
    """
    p = _check_power(inst, power_w)
    wts = inst.weights
    fit = None
    if wts.beta > 0:
        fit = solve_kkt_newton(KktProblem.from_instance(inst, p))
    if fit is not None:
        sol = BandwidthSolution(
            bandwidth_hz=fit.bandwidth_hz, round_latency_s=fit.round_latency_s, price=fit.price
        )
    else:
        sol = solve_bandwidth_exact(inst, p)
    logits = np.log(sol.bandwidth_hz)
    return BandwidthSolution(
        bandwidth_hz=softmax(logits, inst.bandwidth_hz),
        round_latency_s=sol.round_latency_s,
        price=sol.price,
        logits=logits,
    )
