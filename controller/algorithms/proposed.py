"""The proposed framework: CRA (softmax/exact bandwidth + DRL power, fused) + CSM + FAL.

The ablations of DESIGN section 10 switch one module off:

- ``no_cra``: equal bandwidth and full power (no communication allocation);
- ``no_csm``: every board at ``f_max`` (no computation scheduling);
- ``no_fal``: FedAvg weights instead of FAL;
- ``no_drl``: the convex power step instead of the actor-critic (convex-only CRA).
"""

from __future__ import annotations

from pathlib import Path

from controller.aggregation import FairAggregation, FedAvg
from controller.algorithms.base import Algorithm
from controller.allocation.fusion import fuse
from controller.allocation.instance import Allocation, AllocationInstance
from controller.allocation.pipeline import BandwidthMode, allocate_for_power
from controller.allocation.power import convex_power, max_power
from controller.policy.policy import PowerPolicy, PowerPolicyConfig
from protocol.arrays import NDArrayFloat
from protocol.spec import AlgorithmSpec, WeightsSpec

__all__ = ["Proposed"]


class Proposed(Algorithm):
    """CRA + CSM + FAL, honouring ``algorithm.bandwidth``, ``algorithm.power`` and ablations."""

    name = "proposed"

    def __init__(
        self,
        algorithm: AlgorithmSpec,
        weights: WeightsSpec,
        *,
        seed: int = 0,
        policy_path: str | Path | None = None,
        explore: bool = True,
    ) -> None:
        abl = algorithm.ablation
        rule = FedAvg() if abl.no_fal else FairAggregation(weights.lambda_)
        super().__init__(rule, seed=seed)
        self.bandwidth: BandwidthMode = "uniform" if abl.no_cra else algorithm.bandwidth
        power = "max" if abl.no_cra else algorithm.power
        self.power = "convex" if (abl.no_drl and power == "drl") else power
        self.csm = not abl.no_csm
        self.explore = explore
        if self.power == "drl":
            self.policy = (
                PowerPolicy.load(policy_path)
                if policy_path is not None
                else PowerPolicy(PowerPolicyConfig(seed=seed))
            )

    def allocate(
        self, instance: AllocationInstance, *, link_state: NDArrayFloat | None = None
    ) -> Allocation:
        if self.power == "max":
            return allocate_for_power(
                instance, max_power(instance), bandwidth=self.bandwidth, csm=self.csm
            )
        if self.power == "convex":
            return convex_power(instance, bandwidth=self.bandwidth, csm=self.csm)
        assert self.policy is not None
        act = self.policy.act(instance, link_state=link_state, explore=self.explore)
        return fuse(instance, act.power_w, resolve=self.bandwidth, csm=self.csm)
