"""Offline training of the power policy through the link layer (CI-sized, seeded)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from controller.allocation.instance import ObjectiveWeights
from controller.allocation.scenario import random_instance
from controller.link import ARRIVED, OUTAGE
from controller.policy.policy import PowerPolicy, PowerPolicyConfig
from controller.policy.training import (
    TrainConfig,
    evaluate_strategy,
    fading_gains,
    policy_strategy,
    simulate_rounds,
    train_power_policy,
)
from protocol.spec import LinkSpec


def _constant_policy(z: float) -> PowerPolicy:
    """A policy whose mean action is ``z`` for every user (power ``P_max sigmoid(z)``, floored)."""
    pol = PowerPolicy()
    head = pol.net.actor[-1]
    assert isinstance(head, torch.nn.Linear)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(z)
    return pol


def test_training_improves_on_its_first_iterations_and_beats_random_power() -> None:
    """Latency dominates, so the policy (starting near half power) learns to send harder."""
    cfg = TrainConfig(
        iterations=20,
        users=(6, 6),
        fixed_scenario=True,
        gain_db=(-120.0, -100.0),
        update_bits=1e6,
        seed=0,
    )
    _, report = train_power_policy(cfg)
    curve = np.asarray(report.rewards)
    assert curve.shape == (20,)
    assert curve[-5:].mean() > curve[:5].mean()
    assert report.final_reward > report.random_power_reward
    assert report.link_dropout_rate <= report.random_power_dropout_rate


def test_actor_critic_learns_to_beat_full_and_random_power() -> None:
    """Strong channels and costly energy: the top MCS needs far less than P_max."""
    cfg = TrainConfig(
        iterations=20,
        users=(6, 6),
        fixed_scenario=True,
        weights=ObjectiveWeights(beta=1.0, gamma=0.1),
        gain_db=(-100.0, -80.0),
        update_bits=5e6,
        eval_episodes=4,
        seed=0,
    )
    _, report = train_power_policy(cfg)
    assert report.final_reward > report.full_power_reward
    assert report.final_reward > report.random_power_reward
    assert report.final_reward > report.rewards[0]


def test_too_little_power_drops_updates_and_costs_reward() -> None:
    """The reward follows the action through the link layer: outage costs the deadline."""
    cfg = TrainConfig(update_bits=1e6)
    rng = np.random.default_rng(5)
    insts = [random_instance(rng, 8, weights=cfg.weights, update_bits=1e6) for _ in range(4)]
    low_r, low_drop = evaluate_strategy(policy_strategy(_constant_policy(-8.0)), insts, cfg)
    ok_r, ok_drop = evaluate_strategy(policy_strategy(_constant_policy(4.0)), insts, cfg)
    assert low_drop > ok_drop
    assert low_r < ok_r

    inst = insts[0]
    weak, strong = simulate_rounds(
        [inst, inst], [0.02 * inst.p_max_w, inst.p_max_w], [(1, 2), (1, 2)], cfg
    )
    assert weak.dropouts > strong.dropouts
    assert weak.reward < strong.reward
    assert np.all(weak.plan.mcs <= strong.plan.mcs)
    np.testing.assert_array_equal(weak.outcome.status == OUTAGE, weak.plan.mcs < 0)


def test_batched_rounds_match_rounds_run_one_at_a_time() -> None:
    """One HARQ call for many rounds (clocks aligned on the latest deadline) changes nothing."""
    cfg = TrainConfig()
    rng = np.random.default_rng(3)
    insts = [random_instance(rng, n, weights=cfg.weights, update_bits=5e5) for n in (3, 7, 5)]
    powers = [i.p_max_w * rng.uniform(0.02, 1.0, i.n_users) for i in insts]
    keys = [(0, 9, k) for k in range(3)]
    together = simulate_rounds(insts, powers, keys, cfg)
    alone = [
        simulate_rounds([i], [p], [k], cfg)[0] for i, p, k in zip(insts, powers, keys, strict=True)
    ]
    assert len({s.deadline_s for s in together}) == 3  # the alignment is exercised
    for a, b in zip(together, alone, strict=True):
        assert a.reward == pytest.approx(b.reward, rel=1e-12)
        assert a.deadline_s == b.deadline_s
        np.testing.assert_array_equal(a.outcome.status, b.outcome.status)
        np.testing.assert_array_equal(a.outcome.transmissions, b.outcome.transmissions)
        np.testing.assert_allclose(a.outcome.arrival_s, b.outcome.arrival_s, rtol=1e-12)
        np.testing.assert_allclose(a.outcome.comm_energy_j, b.outcome.comm_energy_j, rtol=1e-12)
        np.testing.assert_allclose(a.link_state, b.link_state, rtol=1e-12)


def test_link_state_holds_the_columns_of_link_features() -> None:
    cfg = TrainConfig()
    inst = random_instance(np.random.default_rng(7), 10, weights=cfg.weights, update_bits=5e5)
    (sim,) = simulate_rounds([inst], [0.1 * inst.p_max_w], [(4,)], cfg)
    o, p = sim.outcome, sim.plan
    assert sim.link_state.shape == (10, 3)
    np.testing.assert_array_equal(sim.link_state[:, 0], (o.status != ARRIVED).astype(float))
    np.testing.assert_allclose(sim.link_state[:, 1], o.retries / np.maximum(1, o.transmissions))
    gap = (p.planned_sinr_db - o.true_sinr_db_mean) / 10.0
    gap = np.where(np.isfinite(gap), np.clip(gap, -3.0, 3.0), 0.0)
    np.testing.assert_allclose(sim.link_state[:, 2], gap)
    assert 0 < sim.link_state[:, 0].sum() < 10  # some lost, some arrived


def test_true_channel_is_unit_mean_gamma_block_fading() -> None:
    n, antennas = 4000, 4
    times = np.tile([0.0, 0.01, 0.039, 0.041, np.nan], (n, 1))
    keys = [(0, u) for u in range(n)]
    g = fading_gains(np.full(n, 2.0), times, keys, antennas=antennas, coherence_s=0.04)
    x = g[:, 0] / 2.0
    assert x.mean() == pytest.approx(1.0, abs=0.04)
    assert x.var() == pytest.approx(1.0 / antennas, rel=0.1)
    np.testing.assert_array_equal(g[:, 0], g[:, 2])  # one coherence block, one fade
    assert np.all(g[:, 3] != g[:, 0])  # the next block fades anew
    assert np.all(np.isnan(g[:, 4]))
    again = fading_gains(np.full(n, 2.0), times[:, :1], keys, antennas=antennas, coherence_s=0.04)
    np.testing.assert_array_equal(again[:, 0], g[:, 0])  # a user's fades do not depend on A


def test_short_training_with_a_bandwidth_head_reports_and_saves(tmp_path: Path) -> None:
    cfg = TrainConfig(iterations=3, batch=3, users=(2, 3), update_bits=2e5, eval_episodes=2)
    start = PowerPolicy(PowerPolicyConfig(seed=1, bandwidth_head=True))
    seen: list[int] = []
    policy, report = train_power_policy(cfg, start, progress=lambda it, _: seen.append(it))
    assert seen == [0, 1, 2]
    out = report.to_dict()
    assert out["iterations"] == 3
    assert out["reward_curve"] == pytest.approx(report.rewards)
    for key in ("link_dropout_rate", "full_power_dropout_rate", "random_power_dropout_rate"):
        assert 0.0 <= float(out[key]) <= 1.0  # type: ignore[arg-type]
    back = PowerPolicy.load(policy.save(tmp_path / "drl_ra.pt"))
    assert back.config.bandwidth_head


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"episode_rounds": 0}, "episode_rounds"),
        ({"users": (5, 4)}, "users"),
        ({"coherence_s": 0.0}, "coherence_s"),
        ({"link": LinkSpec(enabled=False)}, "link.enabled"),
    ],
)
def test_bad_training_configs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(**kwargs)  # type: ignore[arg-type]
