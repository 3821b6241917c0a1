"""The numeric cores of one round's resource allocation (DESIGN sections 5 and 6).

Pure, vectorised over users, no I/O: ``system_model`` (rates, latencies, energies, objective,
inverse rate), ``bandwidth`` (exact nested solver and softmax relaxation), ``kkt_newton`` (the
softmax path's solver: joint Newton on the KKT system), ``csm`` (exact, projected gradient, DVFS
rounding, shared edge cycles), ``reference`` (cvxpy), ``power`` (full and convex power),
``fusion`` (project the policy's powers, re-solve ``B``), ``pipeline`` (powers -> full allocation)
and ``scenario`` (seeded random instances). The FL algorithms that compose them live in
:mod:`controller.algorithms`; the RL power policy in :mod:`controller.policy`.
"""

from controller.allocation.bandwidth import (
    BandwidthSolution,
    solve_bandwidth_exact,
    solve_bandwidth_softmax,
)
from controller.allocation.csm import (
    round_up_to_levels,
    schedule_frequencies,
    schedule_frequencies_pgd,
    share_edge_cycles,
)
from controller.allocation.fusion import fuse
from controller.allocation.instance import Allocation, AllocationInstance, ObjectiveWeights
from controller.allocation.pipeline import allocate_for_power
from controller.allocation.power import convex_power, max_power
from controller.allocation.system_model import evaluate

__all__ = [
    "Allocation",
    "AllocationInstance",
    "BandwidthSolution",
    "ObjectiveWeights",
    "allocate_for_power",
    "convex_power",
    "evaluate",
    "fuse",
    "max_power",
    "round_up_to_levels",
    "schedule_frequencies",
    "schedule_frequencies_pgd",
    "share_edge_cycles",
    "solve_bandwidth_exact",
    "solve_bandwidth_softmax",
]
