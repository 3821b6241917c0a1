"""DRL-RA: the actor-critic sets power and bandwidth (no convex part, no CSM), FedAvg weights."""

from __future__ import annotations

from pathlib import Path

from controller.algorithms.base import Algorithm
from controller.allocation.bandwidth import softmax
from controller.allocation.fusion import fuse
from controller.allocation.instance import Allocation, AllocationInstance
from controller.policy.policy import PowerPolicy, PowerPolicyConfig
from protocol.arrays import NDArrayFloat

__all__ = ["DRLResourceAllocation"]


class DRLResourceAllocation(Algorithm):
    """The policy's second head gives bandwidth logits: ``B = B softmax(logits)``."""

    name = "drl_ra"

    def __init__(
        self, *, seed: int = 0, policy_path: str | Path | None = None, explore: bool = True
    ) -> None:
        super().__init__(seed=seed)
        if policy_path is not None:
            self.policy = PowerPolicy.load(policy_path)
            if not self.policy.config.bandwidth_head:
                raise ValueError(
                    f"`policy_path`: {policy_path} has no bandwidth head; train it with "
                    "`testbed train power-policy --bandwidth-head` for drl_ra"
                )
        else:
            self.policy = PowerPolicy(PowerPolicyConfig(seed=seed, bandwidth_head=True))
        self.explore = explore

    def allocate(
        self, instance: AllocationInstance, *, link_state: NDArrayFloat | None = None
    ) -> Allocation:
        assert self.policy is not None
        act = self.policy.act(instance, link_state=link_state, explore=self.explore)
        assert act.bandwidth_logits is not None
        b = softmax(act.bandwidth_logits, instance.bandwidth_hz)
        return fuse(instance, act.power_w, bandwidth_hz=b, resolve=None, csm=False)
