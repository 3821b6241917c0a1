"""The cross-layer edge environment: PettingZoo's contract and seed tests, determinism,
conservation of tasks, the collision rule and the energy accounting against hand-computed
cases."""

from __future__ import annotations

import numpy as np
import pytest

from fedmarl.env import EnvConfig, FedEdgeEnv, TaskClass

BIG = TaskClass("big", bits=1e6, cycles_per_bit=1000.0, deadline_slots=1000, arrival_p=1.0)


def _env(**changes: object) -> FedEdgeEnv:
    return FedEdgeEnv(EnvConfig(**{"agents": 4, "slots": 50, **changes}))  # type: ignore[arg-type]


def test_pettingzoo_parallel_api_and_seed_tests() -> None:
    pz = pytest.importorskip("pettingzoo.test", reason="pettingzoo is the `marl` extra")
    pz.parallel_api_test(_env(), num_cycles=200)
    pz.parallel_seed_test(lambda: _env(), num_cycles=100)


def _rollout(env: FedEdgeEnv, seed: int, steps: int = 40) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    seen = [np.stack(list(obs.values()))]
    for _ in range(steps):
        acts = {a: int(rng.integers(env.n_actions)) for a in env.agents}
        obs, rew, *_ = env.step(acts)
        seen += [np.stack(list(obs.values())), np.array(list(rew.values()))]
    return seen


def test_same_seed_same_trajectory_and_another_seed_another() -> None:
    a, b = _rollout(_env(), 5), _rollout(_env(), 5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = _rollout(_env(), 6)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_every_task_is_completed_dropped_rejected_or_queued() -> None:
    env = _env(agents=8, slots=300, queue=3)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    while env.agents:
        env.step({a: int(rng.integers(env.n_actions)) for a in env.agents})
        c = env.counts
        assert np.array_equal(
            c["arrived"], c["completed"] + c["dropped"] + c["rejected"] + env.in_flight()
        )
    assert env.counts["completed"].sum() > 0
    assert env.counts["dropped"].sum() > 0  # small queues and random actions miss deadlines
    m = env.metrics()
    assert 0 < m["success_rate"] < 1
    assert 0 < m["jain"] <= 1


def test_local_computing_energy_by_hand() -> None:
    env = _env(agents=1, classes=(BIG,))
    env.reset(seed=0)
    level = 2
    _, rew, *_ = env.step({"agent_0": level})
    f = env.freq_hz[0, level]
    cycles = f * env.config.slot_s
    expected = env.kappa[0] * cycles * f**2
    assert env.last_energy_j[0] == pytest.approx(expected, rel=1e-12)
    assert env.q_left[0, 0] == pytest.approx(1 - cycles / (BIG.bits * BIG.cycles_per_bit))
    # Reward: no completion, the energy in mJ weighted, the queue (2 tasks now) weighted.
    queue = env.queue_length()[0]
    want = -env.config.energy_weight * expected * 1e3 - env.config.latency_weight * queue
    assert rew["agent_0"] == pytest.approx(want)


def test_offload_energy_rate_and_the_collision_rule() -> None:
    env = _env(agents=3, classes=(BIG,), subbands=2)
    env.reset(seed=0)
    snr = env.snr()
    levels = env.levels
    # agents 0 and 1 share sub-band 0: both collide; agent 2 is alone on sub-band 1.
    env.step({"agent_0": levels, "agent_1": levels, "agent_2": levels + 1})
    assert env.collided[0, 0]
    assert env.collided[1, 0]
    assert not env.collided[2].any()
    assert env.q_left[0, 0] == 1.0  # nothing got through
    assert env.q_left[1, 0] == 1.0
    sent = env.config.bandwidth_hz / 2 * np.log2(1 + snr[2, 1]) * env.config.slot_s
    assert env.q_left[2, 0] == pytest.approx(1 - sent / BIG.bits)
    slot_energy = env.power_w * env.config.slot_s
    assert np.allclose(env.last_energy_j, slot_energy)  # the colliders paid too
    obs = env._obs_matrix()
    k = env.config.subbands
    assert obs[0, 2 + k] == 1.0  # agent 0 sees its collision on sub-band 0
    assert obs[2, 2 + k : 2 + 2 * k].sum() == 0.0


def test_bad_actions_are_named() -> None:
    env = _env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="agent_1"):
        env.step({"agent_1": env.n_actions})
    with pytest.raises(ValueError, match="unknown agent"):
        env.step({"nobody": 0})
    with pytest.raises(ValueError, match="agents"):
        EnvConfig(agents=0)
    with pytest.raises(ValueError, match="profiles"):
        EnvConfig(profiles=("pdp11",))
