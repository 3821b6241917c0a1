"""The agent's Fed-MARL player: its replica of the world, its learning and its evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge_agent.marl import MarlPlayer, initial_network
from fedmarl.drqn import GreedyPlayers
from protocol.spec import FedMarlSpec

PROFILES = ["rpi4", "jetson-nano", "rpi4"]
CONFIG = FedMarlSpec(slots=80, episodes_per_round=2, eval_episodes=1).model_dump(mode="json")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _start() -> np.ndarray:
    tensors, order = initial_network(CONFIG, 3, PROFILES, seed=4)
    return np.concatenate([tensors[k].reshape(-1) for k in order]).astype(np.float32)


def test_initial_network_is_the_same_for_every_agent_and_fits_the_learner() -> None:
    a, b = _start(), _start()
    np.testing.assert_array_equal(a, b)
    player = MarlPlayer(CONFIG, 1, 3, PROFILES, seed=4)
    assert a.size == player.learner.online_vectors().shape[1]
    with pytest.raises(ValueError, match="vector"):
        GreedyPlayers(a[:-1], 2, player.env.obs_size, player.env.n_actions, player.cfg)


def test_a_round_learns_from_the_federated_network_reproducibly() -> None:
    w = _start()
    one = MarlPlayer(CONFIG, 0, 3, PROFILES, seed=4).train(w, 0)
    two = MarlPlayer(CONFIG, 0, 3, PROFILES, seed=4).train(w, 0)
    assert one.transitions == 2 * 80
    assert np.abs(one.delta).max() > 0  # it learned (2 x 80 slots fill the replay)
    assert one.loss > 0
    np.testing.assert_array_equal(one.delta, two.delta)
    other = MarlPlayer(CONFIG, 1, 3, PROFILES, seed=4).train(w, 0)
    assert not np.array_equal(other.delta, one.delta)  # its own place, its own draws


def test_every_agent_reports_its_own_place_of_one_joint_evaluation() -> None:
    w = _start()
    got = [MarlPlayer(CONFIG, i, 3, PROFILES, seed=4).evaluate(w, 7) for i in range(3)]
    # the joint episode, played by the environment directly with every agent greedy on w
    player = MarlPlayer(CONFIG, 0, 3, PROFILES, seed=4)
    env = player.env
    players = GreedyPlayers(w, 3, env.obs_size, env.n_actions, player.cfg)
    from edge_agent.marl import _EVAL_SEED_OFFSET, _world_seed

    obs, _ = env.reset(seed=_world_seed(4, 7, _EVAL_SEED_OFFSET))
    while env.agents:
        act = players.act(np.stack([obs[a] for a in env.possible_agents]))
        obs, *_ = env.step({a: int(act[k]) for k, a in enumerate(env.possible_agents)})
    arrived = env.counts["arrived"].sum(axis=1)
    completed = env.counts["completed"].sum(axis=1)
    assert [g["arrived"] for g in got] == arrived.tolist()
    assert [g["completed"] for g in got] == completed.tolist()
    assert sum(arrived) > 0
    for g in got:
        assert 0.0 <= g["success_rate"] <= 1.0
        assert g["bits_per_joule"] >= 0.0


def test_player_checks_its_place() -> None:
    with pytest.raises(ValueError, match="agent_index"):
        MarlPlayer(CONFIG, 3, 3, PROFILES, seed=0)
    with pytest.raises(ValueError, match="profiles"):
        MarlPlayer(CONFIG, 0, 4, PROFILES, seed=0)
