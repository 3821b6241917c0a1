"""The DRQN learns, in a static environment with a small budget, whichever of computing
locally and offloading is the better, with a clear margin over random actions; its replay and
its federation vectors behave."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from fedmarl.drqn import DRQN, DRQNConfig, SequenceReplay
from fedmarl.env import EnvConfig, FedEdgeEnv, TaskClass


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny networks: one torch thread is fastest, and leaves the other core alone."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _episode(env: FedEdgeEnv, agent: DRQN | None, seed: int, train: bool) -> tuple[float, float]:
    """Success rate and the share of local actions of one episode (``agent`` None: random)."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    local = taken = 0
    if agent is not None:
        agent.begin_episode()
    while env.agents:
        o = np.stack([obs[a] for a in env.possible_agents])
        if agent is None:
            act = rng.integers(env.n_actions, size=env.config.agents)
        else:
            act = agent.act(o, explore=train)
        busy = env.q_class[:, 0] >= 0
        local += int((busy & (act < env.levels)).sum())
        taken += int(busy.sum())
        obs, rew, *_ = env.step({a: int(act[i]) for i, a in enumerate(env.possible_agents)})
        if agent is not None and train:
            r = np.array([rew[a] for a in env.possible_agents])
            agent.observe(act, r, np.stack([obs[a] for a in env.possible_agents]))
    return env.metrics()["success_rate"], local / max(1, taken)


def _learn(env: FedEdgeEnv, episodes: int) -> tuple[float, float, float]:
    torch.manual_seed(0)
    agent = DRQN(1, env.obs_size, env.n_actions, DRQNConfig(epsilon_decay_steps=2000))
    for ep in range(episodes):
        _episode(env, agent, ep, train=True)
    greedy = [_episode(env, agent, 100 + s, train=False) for s in range(4)]
    random = [_episode(env, None, 100 + s, train=False)[0] for s in range(4)]
    return (
        float(np.mean([g[0] for g in greedy])),
        float(np.mean([g[1] for g in greedy])),
        float(np.mean(random)),
    )


def test_learns_to_compute_locally_when_the_uplink_is_useless() -> None:
    # 2.5 Mcycles due in 2 slots: only the top CPU levels make it; a 10 kHz band carries ~nothing.
    tight = TaskClass("tight", bits=2_500, cycles_per_bit=1000, deadline_slots=2, arrival_p=0.3)
    cfg = EnvConfig(agents=1, slots=100, classes=(tight,), speed_mps=0.0, profiles=("rpi4",))
    env = FedEdgeEnv(EnvConfig(**{**cfg.__dict__, "bandwidth_hz": 1e4}))
    success, local, random = _learn(env, episodes=40)
    assert local > 0.75  # random: levels / actions = 10 / 14
    assert success > random + 0.4


def test_learns_to_offload_when_local_computing_cannot_make_the_deadline() -> None:
    # 20 Mcycles due in 10 slots: 13 slots at the top CPU level; the edge does it in one.
    heavy = TaskClass("heavy", bits=20_000, cycles_per_bit=1000, deadline_slots=10, arrival_p=0.15)
    env = FedEdgeEnv(
        EnvConfig(agents=1, slots=100, classes=(heavy,), speed_mps=0.0, profiles=("rpi4",))
    )
    success, local, random = _learn(env, episodes=30)
    assert local < 0.3  # random: 10 / 14
    assert success > random + 0.08
    assert success > 0.95


def test_replay_prefers_high_priority_sequences() -> None:
    cfg = DRQNConfig(replay_capacity=4, batch_size=2, trace_length=2, burn_in_length=1)
    rb = SequenceReplay(2, 3, cfg)
    for _ in range(4):
        rb.add(
            np.zeros((2, 4, 3), np.float32),
            np.zeros((2, 3), np.int64),
            np.zeros((2, 3), np.float32),
            np.zeros((2, cfg.hidden), np.float32),
            np.zeros((2, cfg.hidden), np.float32),
        )
    rb.priority[:] = [[1e-6, 1e-6, 1e-6, 1.0], [1.0, 1.0, 1.0, 1.0]]
    idx, w = rb.sample(np.random.default_rng(0))
    assert idx.shape == (2, 2)
    assert (idx[0] == 3).all()
    assert w.max() == pytest.approx(1.0)


def test_online_vectors_round_trip_per_agent() -> None:
    agent = DRQN(3, 5, 4, DRQNConfig(hidden=8, dense=8))
    flat = agent.online_vectors()
    assert flat.shape[0] == 3
    swapped = flat[[2, 1, 0]]
    agent.load_online(swapped)
    assert np.array_equal(agent.online_vectors(), swapped)
    agent.load_online(flat[:1], agents=np.array([1]))
    assert np.array_equal(agent.online_vectors()[1], flat[0])
