"""One module per algorithm behind :class:`Algorithm`; build them with make_algorithm."""

from __future__ import annotations

from pathlib import Path

from controller.algorithms.base import Algorithm
from controller.algorithms.cpa import ConvexPowerOnly
from controller.algorithms.drl_ra import DRLResourceAllocation
from controller.algorithms.fedavg import FedAvgStrategy
from controller.algorithms.fedprox import FedProxStrategy
from controller.algorithms.jcc import JointCommComp
from controller.algorithms.proposed import Proposed
from controller.algorithms.rrs import RoundRobin
from protocol.spec import AlgorithmSpec, WeightsSpec

__all__ = [
    "Algorithm",
    "ConvexPowerOnly",
    "DRLResourceAllocation",
    "FedAvgStrategy",
    "FedProxStrategy",
    "JointCommComp",
    "Proposed",
    "RoundRobin",
    "make_algorithm",
]


def make_algorithm(
    algorithm: AlgorithmSpec,
    weights: WeightsSpec,
    *,
    seed: int,
    policy_path: str | Path | None = None,
) -> Algorithm:
    """The strategy an experiment names (``algorithm.name``).

    Args:
        algorithm: ``algorithm:`` of the spec: name, bandwidth/power modes, ablations, FedProx mu.
        weights: ``weights:`` of the spec (``lambda`` is FAL's fairness weight).
        seed: seeds the DRL policy's initial weights and exploration.
        policy_path: a trained policy file for ``proposed`` (power ``drl``) and ``drl_ra``;
            None starts from an untrained policy that learns online.
    """
    name = algorithm.name
    if name == "proposed":
        return Proposed(algorithm, weights, seed=seed, policy_path=policy_path)
    if name == "drl_ra":
        return DRLResourceAllocation(seed=seed, policy_path=policy_path)
    if name == "rrs":
        return RoundRobin(seed=seed)
    if name == "cpa":
        return ConvexPowerOnly(seed=seed)
    if name == "fedavg":
        return FedAvgStrategy(seed=seed)
    if name == "fedprox":
        return FedProxStrategy(algorithm.fedprox_mu, seed=seed)
    if name == "jcc":
        return JointCommComp(seed=seed)
    raise ValueError(f"`algorithm.name`: unknown algorithm {name!r}")
