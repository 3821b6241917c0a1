"""Transmit power without the DRL agent: full power, and the convex (energy-aware) power step.

For a user with bandwidth ``B_u`` that must finish its upload within ``tau`` seconds, the least
power is closed-form, ``P = N0 B (2^{S / (B tau)} - 1) / G``, and the upload energy
``P(tau) tau`` is convex and decreasing in ``tau``. The convex power step splits each user's
deadline ``T`` between upload and training, ``tau + W / f = T``, to minimise
``P(tau) tau + kappa W f(tau)^2`` (convex in ``tau``; golden-section search, vectorised), then
the bandwidth and frequencies are re-solved for the new powers; a few such block-coordinate
rounds never increase the objective.
"""

from __future__ import annotations

import numpy as np

from controller.allocation.instance import Allocation, AllocationInstance
from controller.allocation.pipeline import BandwidthMode, allocate_for_power
from controller.allocation.system_model import comm_latency
from protocol.arrays import NDArrayFloat

__all__ = ["MIN_POWER_FRACTION", "convex_power", "least_power", "max_power"]

#: Powers are kept above this fraction of ``P_max`` (a user with zero power never uploads).
MIN_POWER_FRACTION = 1e-3

_INV_PHI = (np.sqrt(5.0) - 1.0) / 2.0


def max_power(inst: AllocationInstance) -> NDArrayFloat:
    """Everyone at ``P_max``; ``[U]`` W."""
    return inst.p_max_w.copy()


def least_power(
    inst: AllocationInstance, bandwidth_hz: NDArrayFloat, upload_s: NDArrayFloat
) -> NDArrayFloat:
    """The least power (W, ``[U]``) that uploads ``S`` bits on ``B_u`` Hz within ``upload_s``.

    ``inf`` where ``upload_s <= 0``; not clipped to ``P_max``.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        bits_per_hz = inst.update_bits / (bandwidth_hz * upload_s)
        p = inst.noise_psd_w_per_hz * bandwidth_hz * np.expm1(bits_per_hz * np.log(2.0))
        p = p / inst.gain
    return np.where(upload_s > 0, p, np.inf)


def _power_step(inst: AllocationInstance, alloc: Allocation) -> NDArrayFloat:
    """Per-user best split of the deadline ``T`` between upload and training, at fixed ``B``."""
    t_round, b, w = alloc.round_latency_s, alloc.bandwidth_hz, inst.workload_cycles
    p_floor = MIN_POWER_FRACTION * inst.p_max_w
    tau_lo = comm_latency(b, inst.snr_bandwidth_hz(inst.p_max_w), inst.update_bits)
    tau_hi = np.minimum(
        t_round - w / inst.f_max_hz,
        comm_latency(b, inst.snr_bandwidth_hz(p_floor), inst.update_bits),
    )
    tau_hi = np.maximum(tau_hi, tau_lo)

    def cost(tau: NDArrayFloat) -> NDArrayFloat:
        p = np.clip(least_power(inst, b, tau), p_floor, inst.p_max_w)
        f = np.clip(w / (t_round - tau), inst.f_min_hz, inst.f_max_hz)
        return p * tau + inst.kappa * w * f * f

    lo, hi = tau_lo, tau_hi
    for _ in range(60):  # golden section on [lo, hi], all users at once
        m1 = hi - _INV_PHI * (hi - lo)
        m2 = lo + _INV_PHI * (hi - lo)
        left = cost(m1) <= cost(m2)
        hi = np.where(left, m2, hi)
        lo = np.where(left, lo, m1)
    tau = 0.5 * (lo + hi)
    p_new = np.clip(least_power(inst, b, tau), p_floor, inst.p_max_w)
    current = alloc.power_w * alloc.comm_latency_s + inst.kappa * w * alloc.freq_hz**2
    return np.where(cost(tau) < current, p_new, alloc.power_w)


def convex_power(
    inst: AllocationInstance,
    *,
    bandwidth: BandwidthMode = "exact",
    csm: bool = True,
    rounds: int = 3,
) -> Allocation:
    """Block-coordinate descent over powers and ``(B, f, T)``, from full power.

    Args:
        inst: the instance, ``U`` users.
        bandwidth: how ``B`` is re-solved for each power vector (``uniform`` for CPA).
        csm: schedule frequencies (else ``f_max``).
        rounds: power steps; each never increases the objective.
    Returns:
        The best allocation found (with ``beta = 0``, full power, which is optimal).
    """
    best = allocate_for_power(inst, max_power(inst), bandwidth=bandwidth, csm=csm)
    if inst.weights.beta == 0:
        return best
    for _ in range(rounds):
        p = _power_step(inst, best)
        cand = allocate_for_power(inst, p, bandwidth=bandwidth, csm=csm)
        if cand.objective >= best.objective * (1 - 1e-12):
            break
        best = cand
    return best
