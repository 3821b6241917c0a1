"""The per-round system model of DESIGN section 5: rates, latencies, energies, objective.

Notation: ``a_u = P_u G_u / N0`` (Hz) is the "SNR bandwidth" of user ``u``: on ``B_u`` Hz its SNR
is ``a_u / B_u`` and its rate ``r_u = B_u log2(1 + a_u / B_u)`` (bit/s), which rises concavely to
``a_u / ln 2`` as ``B_u`` grows. ``W_u = c_u D_u`` (cycles) is the round's local training work.
All functions are pure and vectorised over users (arrays ``[U]`` float64, or anything that
broadcasts); SI units throughout.
"""

from __future__ import annotations

import numpy as np
from scipy.special import lambertw

from controller.allocation._types import NDArrayFloat
from controller.allocation.instance import Allocation, AllocationInstance, ObjectiveWeights

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


def bandwidth_for_latency(
    latency_s: NDArrayFloat, snr_bw_hz: NDArrayFloat, update_bits: float
) -> NDArrayFloat:
    """The least bandwidth (Hz) that uploads ``S`` bits within ``latency_s``: the inverse rate.

    Solves ``B log2(1 + a/B) = S / tau`` in closed form: with ``c = S ln2 / (a tau) < 1`` and
    ``y = 1 + a/B``, ``ln y = c (y - 1)`` gives ``y = -W_{-1}(-c e^{-c}) / c`` (Lambert W, lower
    branch), so ``B = a / (y - 1)``. ``inf`` where ``tau <= S ln 2 / a`` (no bandwidth suffices).

    Args:
        latency_s: ``[U]`` upload-time budgets ``tau_u``, s.
        snr_bw_hz: ``[U]`` ``a_u``, Hz.
        update_bits: ``S``, bit.
    Returns:
        ``[U]`` bandwidths, Hz.
    """
    tau = np.asarray(latency_s, dtype=np.float64)
    a = np.broadcast_to(np.asarray(snr_bw_hz, dtype=np.float64), tau.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = update_bits * _LN2 / (a * tau)
    ok = (tau > 0) & (c < 1.0)
    cc = np.where(ok, c, 0.5)
    # Small c (bandwidth-rich): y ~ ln(1/c)/c is huge; W_{-1} stays accurate there.
    y = -lambertw(-cc * np.exp(-cc), k=-1).real / cc
    b = a / (y - 1.0)
    # Newton polish on the rate equation in log B (removes the branch-point error near c -> 1).
    target = update_bits / np.where(ok, tau, 1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(3):
            x = a / b
            r = b * np.log1p(x) / _LN2
            dr_dlogb = b * (np.log1p(x) - x / (1.0 + x)) / _LN2
            b = b * np.exp(-(r - target) / dr_dlogb)
    return np.where(ok & np.isfinite(b) & (b > 0), b, np.inf)


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
