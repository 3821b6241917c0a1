"""The actor-critic power policy of CRA: the network, its offline training, where files live."""

from controller.policy.policy import N_FEATURES, PolicyAction, PowerPolicy, PowerPolicyConfig
from controller.policy.store import policy_path

__all__ = ["N_FEATURES", "PolicyAction", "PowerPolicy", "PowerPolicyConfig", "policy_path"]
