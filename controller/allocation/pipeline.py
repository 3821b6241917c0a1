"""From powers to a full allocation: CRA bandwidth, then CSM frequencies, then DVFS rounding.

This is the common tail of every strategy: given the powers ``P`` (from the power policy, a
convex step or ``P_max``) it picks the bandwidth (``exact``, ``softmax`` or ``uniform``), schedules
the frequencies (CSM, or everyone at ``f_max``), rounds them up to the boards' levels and
evaluates the result with the system model.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from controller.allocation.bandwidth import (
    solve_bandwidth_exact,
    solve_bandwidth_softmax,
    uniform_bandwidth,
)
from controller.allocation.csm import round_up_to_levels, schedule_frequencies
from controller.allocation.instance import Allocation, AllocationInstance
from controller.allocation.system_model import comm_latency, evaluate
from protocol.arrays import NDArrayFloat

__all__ = ["BandwidthMode", "allocate_for_power", "frequencies_for"]

BandwidthMode = Literal["exact", "softmax", "uniform"]


def frequencies_for(
    inst: AllocationInstance,
    bandwidth_hz: NDArrayFloat,
    power_w: NDArrayFloat,
    *,
    csm: bool = True,
    deadline_hint_s: float | None = None,
) -> NDArrayFloat:
    """CSM frequencies for given ``(B, P)``, rounded up to each board's levels; ``[U]`` Hz.

    With ``csm=False`` every board runs at ``f_max`` (the baselines without CSM).
    ``deadline_hint_s`` (s) starts CSM's search at the round latency CRA fitted ``B`` to.
    """
    if not csm:
        return inst.f_max_hz.copy()
    tau = comm_latency(bandwidth_hz, inst.snr_bandwidth_hz(power_w), inst.update_bits)
    sched = schedule_frequencies(
        tau,
        inst.workload_cycles,
        inst.f_min_hz,
        inst.f_max_hz,
        inst.kappa,
        inst.weights,
        deadline_hint_s=deadline_hint_s,
    )
    return round_up_to_levels(sched.freq_hz, inst.levels_hz)


def allocate_for_power(
    inst: AllocationInstance,
    power_w: NDArrayFloat,
    *,
    bandwidth: BandwidthMode = "softmax",
    csm: bool = True,
) -> Allocation:
    """The full allocation for fixed powers ``power_w`` ``[U]`` (W, in ``(0, P_max]``)."""
    p = np.asarray(power_w, dtype=np.float64)
    hint = None
    if bandwidth == "exact":
        sol = solve_bandwidth_exact(inst, p)
        b, hint = sol.bandwidth_hz, sol.round_latency_s
    elif bandwidth == "softmax":
        sol = solve_bandwidth_softmax(inst, p)
        b, hint = sol.bandwidth_hz, sol.round_latency_s
    elif bandwidth == "uniform":
        b = uniform_bandwidth(inst)
    else:
        raise ValueError(f"`bandwidth` must be exact, softmax or uniform, got {bandwidth!r}.")
    f = frequencies_for(inst, b, p, csm=csm, deadline_hint_s=hint)
    return evaluate(inst, b, p, f)
