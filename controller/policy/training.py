"""Offline training of the power policy in simulation (``testbed train power-policy``).

Read top to bottom: a config dataclass, one seeding block, the loop. Each iteration draws a batch
of rounds (a fixed scenario, or fresh random instances), samples powers from the policy, runs the
rest of the proposed pipeline (fusion: softmax bandwidth re-solved for those powers, then CSM and
DVFS rounding) and scores the result with the reward ``R_t`` of DESIGN section 6 with no
accuracy term (simulation has no model to train): ``-beta sum E - gamma sum T``, per user.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from controller.allocation.bandwidth import softmax
from controller.allocation.fusion import fuse
from controller.allocation.instance import AllocationInstance, ObjectiveWeights
from controller.allocation.pipeline import BandwidthMode
from controller.allocation.scenario import random_instance
from controller.policy.policy import PolicyAction, PowerPolicy, PowerPolicyConfig
from controller.round.reward import round_reward
from protocol.arrays import NDArrayFloat

__all__ = ["TrainConfig", "TrainReport", "evaluate_powers", "train_power_policy"]


@dataclass(frozen=True)
class TrainConfig:
    """Offline training in simulation."""

    iterations: int = 200
    """Actor-critic updates."""
    batch: int = 8
    """Rounds (sampled actions) per update."""
    users: tuple[int, int] = (4, 16)
    """Range of users per simulated round (inclusive), when ``fixed_scenario`` is False."""
    fixed_scenario: bool = False
    """Train on one seeded instance (the smoke/learning test) instead of fresh ones."""
    weights: ObjectiveWeights = field(default_factory=lambda: ObjectiveWeights(beta=0.5))
    """Objective weights of the simulated rounds."""
    gain_db: tuple[float, float] = (-130.0, -100.0)
    """Range of the users' channel gains ``10 log10 G``, dB."""
    update_bits: float | None = None
    """Bits per model update (default: drawn per round, 1-8 Mbit)."""
    bandwidth: BandwidthMode = "softmax"
    """How fusion re-solves the bandwidth."""
    seed: int = 0
    """Seed of the scenarios, the network and the exploration noise."""
    threads: int = 1
    """torch threads (the controller host shares its cores)."""


@dataclass
class TrainReport:
    """What training measured; rewards are per user per round."""

    rewards: list[float]
    """Mean sampled reward of each iteration."""
    final_reward: float
    """Mean reward of the trained (deterministic) policy on the evaluation rounds."""
    full_power_reward: float
    """Same rounds with every user at ``P_max``."""
    random_power_reward: float
    """Same rounds with uniformly random powers in ``(0, P_max]``."""
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {
            "iterations": len(self.rewards),
            "first_reward": self.rewards[0] if self.rewards else None,
            "last_reward": self.rewards[-1] if self.rewards else None,
            "final_reward": self.final_reward,
            "full_power_reward": self.full_power_reward,
            "random_power_reward": self.random_power_reward,
            "seconds": self.seconds,
        }


def evaluate_powers(
    inst: AllocationInstance, power_w: NDArrayFloat, *, bandwidth: BandwidthMode = "softmax"
) -> float:
    """Per-user simulated reward of powers ``[U]`` W after fusion and CSM."""
    alloc = fuse(inst, power_w, resolve=bandwidth)
    r = round_reward(inst.weights, accuracy=0.0, energy_j=alloc.energy_j, latency_s=alloc.latency_s)
    return r / inst.n_users


def _evaluate_action(
    inst: AllocationInstance, act: PolicyAction, *, bandwidth: BandwidthMode
) -> float:
    """Per-user reward of a sampled action (DRL-RA: the action's own bandwidth, no CSM)."""
    if act.bandwidth_logits is None:
        return evaluate_powers(inst, act.power_w, bandwidth=bandwidth)
    b = softmax(act.bandwidth_logits, inst.bandwidth_hz)
    alloc = fuse(inst, act.power_w, bandwidth_hz=b, resolve=None, csm=False)
    r = round_reward(inst.weights, accuracy=0.0, energy_j=alloc.energy_j, latency_s=alloc.latency_s)
    return r / inst.n_users


def train_power_policy(
    config: TrainConfig,
    policy: PowerPolicy | None = None,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[PowerPolicy, TrainReport]:
    """Train ``policy`` (default: a fresh one seeded from ``config.seed``) in simulation.

    Returns:
        The trained policy and a report comparing it with full and random power on the same
        evaluation rounds.
    """
    # -- seeding ------------------------------------------------------------------------------
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    policy = policy or PowerPolicy(PowerPolicyConfig(seed=config.seed))
    start = time.perf_counter()

    def draw() -> AllocationInstance:
        n = int(rng.integers(config.users[0], config.users[1] + 1))
        return random_instance(
            rng, n, weights=config.weights, gain_db=config.gain_db, update_bits=config.update_bits
        )

    fixed = draw() if config.fixed_scenario else None
    eval_rounds = [fixed] if fixed is not None else [draw() for _ in range(8)]

    # -- the loop -----------------------------------------------------------------------------
    history: list[float] = []
    for it in range(config.iterations):
        acts, rewards = [], []
        for _ in range(config.batch):
            inst = fixed if fixed is not None else draw()
            act = policy.act(inst, explore=True)
            acts.append(act)
            rewards.append(_evaluate_action(inst, act, bandwidth=config.bandwidth))
        stats = policy.update(acts, rewards)
        history.append(stats["mean_reward"])
        if progress is not None:
            progress(it, stats["mean_reward"])

    # -- evaluation ---------------------------------------------------------------------------
    eval_rng = np.random.default_rng(config.seed + 10_000)

    def mean_reward(powers: Callable[[AllocationInstance], NDArrayFloat]) -> float:
        vals = [evaluate_powers(i, powers(i), bandwidth=config.bandwidth) for i in eval_rounds]
        return float(np.mean(vals))

    final = float(
        np.mean(
            [
                _evaluate_action(i, policy.act(i, explore=False), bandwidth=config.bandwidth)
                for i in eval_rounds
            ]
        )
    )
    full = mean_reward(lambda i: i.p_max_w.copy())
    rand = float(
        np.mean(
            [
                mean_reward(lambda i: i.p_max_w * eval_rng.uniform(1e-3, 1.0, i.n_users))
                for _ in range(4)
            ]
        )
    )
    report = TrainReport(
        rewards=history,
        final_reward=final,
        full_power_reward=full,
        random_power_reward=rand,
        seconds=time.perf_counter() - start,
    )
    return policy, report
