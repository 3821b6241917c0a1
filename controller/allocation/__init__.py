"""Resource allocation for one FL round: system model, CRA, CSM, reward, baselines.

What the round engine uses
--------------------------
- ``make_strategy(algorithm_spec, weights_spec, *, seed, policy_path=None) -> AllocationStrategy``
  builds the algorithm an experiment names (proposed, rrs, cpa, fedavg, fedprox, drl_ra, jcc;
  ablations through ``algorithm.ablation``). Every round:

  - ``strategy.select_clients(round_idx, user_ids, k, rng) -> list[str]``;
  - ``strategy.allocate(instance) -> Allocation`` with ``instance`` an
    :class:`AllocationInstance` (build it with ``AllocationInstance.from_profiles``, then
    ``instance.subset(idx)`` for the selected clients);
  - ``strategy.aggregation_weights(losses, data_sizes) -> np.ndarray`` (sum 1);
  - ``strategy.fedprox_mu`` (0 unless FedProx) and ``strategy.observe(reward)`` (online DRL);
  - ``strategy.save_policy(path)`` to keep a learned policy.
- ``round_reward(weights, accuracy=..., energy_j=..., latency_s=...)`` is ``R_t``.
- ``Allocation.to_dict()`` is the JSON form (also ``testbed alloc solve``'s output).

Numeric cores (pure, vectorised over users)
-------------------------------------------
``system_model`` (rates, latencies, energies, objective, inverse rate), ``bandwidth`` (exact
nested solver and softmax relaxation), ``kkt_newton`` (the softmax path's solver: joint Newton
on the KKT system), ``csm`` (exact, projected gradient, DVFS rounding, shared edge cycles),
``reference`` (cvxpy), ``power`` (full and convex power), ``fusion``, ``policy`` and
``training`` (actor-critic, torch), ``bench`` (timings and gaps).
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
from controller.allocation.instance import (
    Allocation,
    AllocationInstance,
    InstanceError,
    InstanceModel,
    ObjectiveWeights,
    load_instance,
    parse_instance,
)
from controller.allocation.pipeline import allocate_for_power
from controller.allocation.power import convex_power, max_power
from controller.allocation.reward import round_reward
from controller.allocation.strategies import AllocationStrategy, make_strategy
from controller.allocation.system_model import evaluate

__all__ = [
    "Allocation",
    "AllocationInstance",
    "AllocationStrategy",
    "BandwidthSolution",
    "InstanceError",
    "InstanceModel",
    "ObjectiveWeights",
    "allocate_for_power",
    "convex_power",
    "evaluate",
    "fuse",
    "load_instance",
    "make_strategy",
    "max_power",
    "parse_instance",
    "round_reward",
    "round_up_to_levels",
    "schedule_frequencies",
    "schedule_frequencies_pgd",
    "share_edge_cycles",
    "solve_bandwidth_exact",
    "solve_bandwidth_softmax",
]
