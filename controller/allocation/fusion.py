"""CRA fusion: combine the DRL powers with the convex bandwidth and project onto the feasible set.

The policy's powers are clipped to ``[P_floor, P_max]``; any bandwidth proposal (the policy's own
head, a previous round's split) is made strictly positive and renormalised to ``B``; then the
bandwidth is re-solved for the chosen powers (softmax or exact) and handed to CSM.
"""

from __future__ import annotations

import numpy as np

from controller.allocation.instance import Allocation, AllocationInstance
from controller.allocation.pipeline import BandwidthMode, allocate_for_power, frequencies_for
from controller.allocation.power import MIN_POWER_FRACTION
from controller.allocation.system_model import evaluate
from protocol.arrays import NDArrayFloat

__all__ = ["fuse", "project_bandwidth", "project_power"]


def project_power(inst: AllocationInstance, power_w: NDArrayFloat) -> NDArrayFloat:
    """Clip ``[U]`` powers (W) into ``[MIN_POWER_FRACTION * P_max, P_max]``; NaN -> ``P_max``."""
    p = np.asarray(power_w, dtype=np.float64)
    if p.shape != (inst.n_users,):
        raise ValueError(f"`power_w` must have shape ({inst.n_users},), got {p.shape}.")
    p = np.where(np.isfinite(p), p, inst.p_max_w)
    return np.clip(p, MIN_POWER_FRACTION * inst.p_max_w, inst.p_max_w)


def project_bandwidth(inst: AllocationInstance, bandwidth_hz: NDArrayFloat) -> NDArrayFloat:
    """Make ``[U]`` bandwidths (Hz) strictly positive and renormalise them to sum to ``B``."""
    b = np.asarray(bandwidth_hz, dtype=np.float64)
    if b.shape != (inst.n_users,):
        raise ValueError(f"`bandwidth_hz` must have shape ({inst.n_users},), got {b.shape}.")
    b = np.where(np.isfinite(b), np.maximum(b, 0.0), 0.0)
    floor = 1e-6 * inst.bandwidth_hz / inst.n_users
    b = np.maximum(b, floor)
    return inst.bandwidth_hz * b / b.sum()


def fuse(
    inst: AllocationInstance,
    power_w: NDArrayFloat,
    *,
    bandwidth_hz: NDArrayFloat | None = None,
    resolve: BandwidthMode | None = "softmax",
    csm: bool = True,
) -> Allocation:
    """The fused allocation for the policy's powers.

    Args:
        inst: the instance, ``U`` users.
        power_w: ``[U]`` powers proposed by the policy, W (projected here).
        bandwidth_hz: ``[U]`` bandwidth proposal, Hz; used as is (after projection) when
            ``resolve`` is None, else replaced by the re-solved bandwidth.
        resolve: re-solve ``B`` for the projected powers (``softmax`` or ``exact``), or None.
        csm: schedule the frequencies (else every board at ``f_max``).
    """
    p = project_power(inst, power_w)
    if resolve is not None:
        return allocate_for_power(inst, p, bandwidth=resolve, csm=csm)
    if bandwidth_hz is None:
        raise ValueError("`bandwidth_hz` is required when `resolve` is None.")
    b = project_bandwidth(inst, bandwidth_hz)
    return evaluate(inst, b, p, frequencies_for(inst, b, p, csm=csm))
