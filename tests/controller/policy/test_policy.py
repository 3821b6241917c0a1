"""The actor-critic power policy: any number of users, link state, save/load, online learning."""

from pathlib import Path

import numpy as np
import pytest
import torch

from controller.allocation.scenario import random_instance
from controller.policy.policy import N_FEATURES, PowerPolicy, PowerPolicyConfig, user_features


@pytest.mark.parametrize("n", [1, 3, 50])
def test_one_network_serves_any_number_of_users(n: int) -> None:
    inst = random_instance(np.random.default_rng(n), n)
    assert user_features(inst).shape == (n, N_FEATURES)
    act = PowerPolicy().act(inst, explore=True)
    assert act.power_w.shape == (n,)
    assert np.all(act.power_w > 0)
    assert np.all(act.power_w <= inst.p_max_w)


def test_the_last_link_outcome_is_part_of_the_state() -> None:
    inst = random_instance(np.random.default_rng(0), 4)
    lost = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.2], [0.0, 0.0, -0.1], [1.0, 0.0, 0.0]])
    feats = user_features(inst, lost)
    np.testing.assert_array_equal(feats[:, -3:], lost)
    np.testing.assert_array_equal(user_features(inst)[:, -3:], np.zeros((4, 3)))
    np.testing.assert_array_equal(feats[:, :-3], user_features(inst)[:, :-3])
    pol = PowerPolicy()
    assert not np.array_equal(
        pol.act(inst, link_state=lost).power_w, pol.act(inst).power_w
    )  # the network reads the link columns
    with pytest.raises(ValueError, match="link_state"):
        user_features(inst, np.zeros((4, 2)))


@pytest.mark.parametrize("bandwidth_head", [False, True])
def test_save_and_load_round_trip(tmp_path: Path, bandwidth_head: bool) -> None:
    inst = random_instance(np.random.default_rng(0), 5)
    pol = PowerPolicy(PowerPolicyConfig(seed=3, bandwidth_head=bandwidth_head))
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


def _weights_equal(a: PowerPolicy, b: PowerPolicy) -> bool:
    sa, sb = a.net.state_dict(), b.net.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_policy_saved_after_online_updates_resumes_exactly(tmp_path: Path) -> None:
    """Weights, optimisers, reward scale and the exploration generator all come back."""
    inst = random_instance(np.random.default_rng(1), 5)
    rng = np.random.default_rng(2)
    pol = PowerPolicy(PowerPolicyConfig(seed=4))
    state = None
    for k in range(5):
        pol.act(inst, link_state=state, explore=True)
        assert pol.observe(-1.0 - k) is not None
        state = np.column_stack([rng.random(5) < 0.3, rng.random(5), rng.normal(0, 0.2, 5)])
    back = PowerPolicy.load(pol.save(tmp_path / "k5.pt"))
    assert _weights_equal(back, pol)
    assert back.reward_scale == pol.reward_scale
    assert back.pending is None

    mean_a, mean_b = pol.act(inst, link_state=state), back.act(inst, link_state=state)
    np.testing.assert_array_equal(mean_a.power_w, mean_b.power_w)
    a = pol.act(inst, link_state=state, explore=True)
    b = back.act(inst, link_state=state, explore=True)
    np.testing.assert_array_equal(a.z, b.z)  # the same exploration noise
    assert not np.array_equal(a.z, mean_a.z)
    np.testing.assert_array_equal(a.power_w, b.power_w)

    before = [p.detach().clone() for p in pol.net.parameters()]
    pol.observe(-2.5)
    back.observe(-2.5)
    assert _weights_equal(back, pol)  # and the same (Adam) step
    assert any(not torch.equal(x, y) for x, y in zip(before, pol.net.parameters(), strict=True))
    np.testing.assert_array_equal(
        pol.act(inst, link_state=state, explore=True).z,
        back.act(inst, link_state=state, explore=True).z,
    )


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
    pol.act(inst, explore=True)
    with pytest.raises(ValueError, match="reward"):
        pol.observe(float("inf"))
