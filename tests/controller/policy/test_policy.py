"""The actor-critic power policy: any number of users, save/load, online and offline learning."""

from pathlib import Path

import numpy as np
import pytest
import torch

from controller.allocation.instance import ObjectiveWeights
from controller.allocation.scenario import random_instance
from controller.policy.policy import N_FEATURES, PowerPolicy, PowerPolicyConfig, user_features
from controller.policy.training import TrainConfig, train_power_policy


@pytest.mark.parametrize("n", [1, 3, 50])
def test_one_network_serves_any_number_of_users(n: int) -> None:
    inst = random_instance(np.random.default_rng(n), n)
    assert user_features(inst).shape == (n, N_FEATURES)
    act = PowerPolicy().act(inst, explore=True)
    assert act.power_w.shape == (n,)
    assert np.all(act.power_w > 0)
    assert np.all(act.power_w <= inst.p_max_w)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    inst = random_instance(np.random.default_rng(0), 5)
    pol = PowerPolicy(PowerPolicyConfig(seed=3, bandwidth_head=True))
    path = pol.save(tmp_path / "p" / "x.pt")
    back = PowerPolicy.load(path)
    assert back.config == pol.config
    np.testing.assert_array_equal(
        back.act(inst, explore=False).power_w, pol.act(inst, explore=False).power_w
    )
    with pytest.raises(FileNotFoundError, match="policy_path"):
        PowerPolicy.load(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"nothing": 1}, bad)
    with pytest.raises(ValueError, match="policy_path"):
        PowerPolicy.load(bad)


def test_online_observe_updates_the_actor() -> None:
    inst = random_instance(np.random.default_rng(0), 4)
    pol = PowerPolicy()
    assert pol.observe(-1.0) is None  # nothing to learn from yet
    before = [p.detach().clone() for p in pol.net.actor.parameters()]
    pol.act(inst, explore=True)
    stats = pol.observe(-3.0)
    assert stats is not None
    assert np.isfinite(stats["critic_loss"])
    after = list(pol.net.actor.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_actor_critic_learns_to_beat_full_and_random_power() -> None:
    """Fixed seeded round with strong channels and costly energy: the best power is below P_max."""
    cfg = TrainConfig(
        iterations=25,
        batch=8,
        users=(6, 6),
        fixed_scenario=True,
        weights=ObjectiveWeights(beta=1.0, gamma=0.1),
        gain_db=(-100.0, -80.0),
        update_bits=2e7,
        seed=0,
    )
    _, report = train_power_policy(cfg)
    assert report.final_reward > report.full_power_reward
    assert report.final_reward > report.random_power_reward
    assert report.final_reward > report.rewards[0]
