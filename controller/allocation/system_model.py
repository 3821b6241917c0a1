"""The per-round system model of DESIGN section 5: rates, latencies, energies, objective.

Notation: ``a_u = P_u G_u / N0`` (Hz) is the "SNR bandwidth" of user ``u``: on ``B_u`` Hz its SNR
is ``a_u / B_u`` and its rate ``r_u = B_u log2(1 + a_u / B_u)`` (bit/s), which rises concavely to
``a_u / ln 2`` as ``B_u`` grows. ``W_u = c_u D_u`` (cycles) is the round's local training work.
All functions are pure and vectorised over users (arrays ``[U]`` float64, or anything that
broadcasts); SI units throughout.
"""

from __future__ import annotations

import numpy as np

from controller.allocation.instance import Allocation, AllocationInstance, ObjectiveWeights
from protocol.arrays import NDArrayFloat

__all__ = [
    "bandwidth_for_latency",
    "comm_latency",
    "comm_latency_slope",
    "comp_latency",
    "energy",
    "evaluate",
    "min_comm_latency",
    "objective",
    "rate",
    "rate_equation_root",
    "spectral_efficiency_for_latency",
]

_LN2 = float(np.log(2.0))


def rate(bandwidth_hz: NDArrayFloat, snr_bw_hz: NDArrayFloat) -> NDArrayFloat:
    """Shannon rate ``B log2(1 + a / B)``, bit/s; 0 where ``B == 0``.

    Args:
        bandwidth_hz: ``[U]`` bandwidth ``B_u``, Hz, >= 0.
        snr_bw_hz: ``[U]`` ``a_u = P_u G_u / N0``, Hz, >= 0.
    """
    b = np.asarray(bandwidth_hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = b * np.log1p(snr_bw_hz / b) / _LN2
    return np.where(b > 0, r, 0.0)


def comm_latency(
    bandwidth_hz: NDArrayFloat, snr_bw_hz: NDArrayFloat, update_bits: float
) -> NDArrayFloat:
    """Upload latency ``T^comm_u = S / r_u``, s; ``inf`` where the rate is 0. Shape ``[U]``."""
    r = rate(bandwidth_hz, snr_bw_hz)
    with np.errstate(divide="ignore"):
        return np.where(r > 0, update_bits / np.where(r > 0, r, 1.0), np.inf)


def comm_latency_slope(
    bandwidth_hz: NDArrayFloat, snr_bw_hz: NDArrayFloat, update_bits: float
) -> NDArrayFloat:
    """``d T^comm_u / d B_u`` (s/Hz, negative): how much one more hertz shortens the upload.

    ``r'(B) = (ln(1+x) - x/(1+x)) / ln 2`` with ``x = a/B``, and ``t' = -S r' / r^2``.
    """
    b = np.asarray(bandwidth_hz, dtype=np.float64)
    x = snr_bw_hz / b
    l1p = np.log1p(x)
    r = b * l1p / _LN2
    dr = (l1p - x / (1.0 + x)) / _LN2
    return -update_bits * dr / (r * r)


def min_comm_latency(snr_bw_hz: NDArrayFloat, update_bits: float) -> NDArrayFloat:
    """Upload latency with unlimited bandwidth, ``S ln 2 / a_u``, s; shape ``[U]``."""
    return update_bits * _LN2 / snr_bw_hz


def spectral_efficiency_for_latency(
    latency_s: NDArrayFloat,
    snr_bw_hz: NDArrayFloat,
    update_bits: float,
    *,
    iters: int = 3,
) -> NDArrayFloat:
    """``y = ln(1 + a / B)`` (nats/s/Hz) of the least bandwidth uploading ``S`` bits in ``tau``.

    With ``c = S ln 2 / (a tau)`` the rate equation ``B log2(1 + a/B) = S / tau`` reads
    ``c expm1(y) = y``, whose root ``y > 0`` exists for ``0 < c < 1``. It is found by Newton on
    ``h(y) = ln(expm1(y) / y) + ln c`` (nearly linear in ``y`` at both ends) from the
    asymptotic form of the Lambert W function (``c`` small) or the branch-point series (``c``
    near 1); three steps reach machine precision over ``c`` in
    ``(1e-15, 1 - 1e-15)``. No Lambert W evaluation: this runs a few vector operations per step.

    Args:
        latency_s: ``[U]`` upload-time budgets ``tau_u``, s.
        snr_bw_hz: ``[U]`` ``a_u``, Hz.
        update_bits: ``S``, bit.
        iters: Newton steps.
    Returns:
        ``[U]`` ``y``; 0 where ``tau <= S ln 2 / a`` (no bandwidth suffices).
    """
    tau = np.asarray(latency_s, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        c = update_bits * _LN2 / (snr_bw_hz * tau)
        ok = (tau > 0) & (c < 1.0) & (c > 0)
        y = rate_equation_root(np.where(ok, c, 0.5), iters=iters)
    return np.where(ok, y, 0.0)


def rate_equation_root(c: NDArrayFloat, *, iters: int = 3) -> NDArrayFloat:
    """The root ``y > 0`` of ``c expm1(y) = y`` for every ``c`` in ``(0, 1)``, ``[U]``.

    The kernel of :func:`spectral_efficiency_for_latency` (see there), for callers that have
    ``c`` already and run under their own ``np.errstate``.
    """
    lc = np.log(c)
    l1 = lc - c
    l2 = np.log(-l1)
    y_far = np.log((l2 - l1 - l2 / l1) / c)  # -W_{-1}(-c e^-c) / c, asymptotically
    d = (1.0 - c) / c
    y_near = 3.0 * (np.sqrt(0.25 + d * (2.0 / 3.0)) - 0.5)  # y/2 + y^2/6 = (1-c)/c
    y = np.where(c > 0.5, y_near, y_far)
    for _ in range(iters):
        em = np.expm1(y)
        h = np.log(em / y) + lc
        dh = np.where(y > 1e-3, (em + 1.0) / em - 1.0 / y, 0.5 + y * (1.0 / 12.0))
        y = np.maximum(y - h / dh, 0.5 * y)
    return y


def bandwidth_for_latency(
    latency_s: NDArrayFloat, snr_bw_hz: NDArrayFloat, update_bits: float
) -> NDArrayFloat:
    """The least bandwidth (Hz) that uploads ``S`` bits within ``latency_s``: the inverse rate.

    ``B = a / expm1(y)`` with ``y`` from :func:`spectral_efficiency_for_latency`; ``inf`` where
    ``tau <= S ln 2 / a`` (no bandwidth suffices).

    Args:
        latency_s: ``[U]`` upload-time budgets ``tau_u``, s.
        snr_bw_hz: ``[U]`` ``a_u``, Hz.
        update_bits: ``S``, bit.
    Returns:
        ``[U]`` bandwidths, Hz.
    """
    y = spectral_efficiency_for_latency(latency_s, snr_bw_hz, update_bits)
    with np.errstate(divide="ignore"):
        b = snr_bw_hz / np.expm1(y)
    return np.where(y > 0, b, np.inf)


def comp_latency(workload_cycles: NDArrayFloat, freq_hz: NDArrayFloat) -> NDArrayFloat:
    """Local-training latency ``T^comp_u = c_u D_u / f_u``, s; shape ``[U]``."""
    return workload_cycles / freq_hz


def energy(
    power_w: NDArrayFloat,
    comm_latency_s: NDArrayFloat,
    kappa: NDArrayFloat,
    workload_cycles: NDArrayFloat,
    freq_hz: NDArrayFloat,
) -> NDArrayFloat:
    """``E_u = P_u T^comm_u + kappa_u W_u f_u^2``, J; shape ``[U]``."""
    return power_w * comm_latency_s + kappa * workload_cycles * freq_hz**2


def objective(weights: ObjectiveWeights, round_latency_s: float, energy_j: NDArrayFloat) -> float:
    """The round objective ``gamma T + beta sum_u E_u`` (the problem of DESIGN section 5)."""
    return float(weights.gamma * round_latency_s + weights.beta * np.sum(energy_j))


def evaluate(
    inst: AllocationInstance,
    bandwidth_hz: NDArrayFloat,
    power_w: NDArrayFloat,
    freq_hz: NDArrayFloat,
) -> Allocation:
    """Latencies, energies, round latency and objective of a given ``(B, P, f)``.

    Args:
        inst: the instance (``U`` users).
        bandwidth_hz, power_w, freq_hz: ``[U]`` float64, Hz / W / Hz.
    """
    a = inst.snr_bandwidth_hz(power_w)
    t_comm = comm_latency(bandwidth_hz, a, inst.update_bits)
    w = inst.workload_cycles
    lat = t_comm + comp_latency(w, freq_hz)
    e = energy(power_w, t_comm, inst.kappa, w, freq_hz)
    t_round = float(np.max(lat))
    return Allocation(
        bandwidth_hz=np.asarray(bandwidth_hz, dtype=np.float64),
        power_w=np.asarray(power_w, dtype=np.float64),
        freq_hz=np.asarray(freq_hz, dtype=np.float64),
        latency_s=lat,
        energy_j=e,
        comm_latency_s=t_comm,
        round_latency_s=t_round,
        objective=objective(inst.weights, t_round, e),
    )
