"""The policies behind one interface: heuristics act as their rules say, every method runs an
episode, and fedmarl federates its agents every R episodes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from fedmarl.drqn import DRQNConfig
from fedmarl.env import EnvConfig, FedEdgeEnv, TaskClass
from fedmarl.policies import METHODS, make_policy
from fedmarl.run import train_and_evaluate


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_greedy_scales_the_cpu_to_the_deadline_when_the_uplink_cannot_make_it() -> None:
    # 1.2 Mcycles due in 4 slots: 0.4 GHz would do; the lowest level (600 MHz) is enough.
    small = TaskClass("small", bits=1_200, cycles_per_bit=1000, deadline_slots=4, arrival_p=1.0)
    env = FedEdgeEnv(
        EnvConfig(agents=2, classes=(small,), profiles=("rpi4",), bandwidth_hz=1e3, slots=5)
    )
    obs, _ = env.reset(seed=0)
    act = make_policy("greedy", env).act(env, np.stack(list(obs.values())), explore=False)
    assert (act == 0).all()  # local, lowest level
    # A tighter deadline needs a higher level: 1.2 Mcycles in 1 slot -> 1.2 GHz.
    tight = TaskClass("tight", bits=1_200, cycles_per_bit=1000, deadline_slots=2, arrival_p=1.0)
    env = FedEdgeEnv(
        EnvConfig(agents=2, classes=(tight,), profiles=("rpi4",), bandwidth_hz=1e3, slots=5)
    )
    obs, _ = env.reset(seed=0)
    act = make_policy("greedy", env).act(env, np.stack(list(obs.values())), explore=False)
    assert (env.freq_hz[0, act] >= 1.2e9).all()
    assert (env.freq_hz[0, act - 1] < 1.2e9).all()


def test_fixed_heuristics() -> None:
    env = FedEdgeEnv(EnvConfig(agents=6, subbands=4, slots=5))
    obs, _ = env.reset(seed=0)
    o = np.stack(list(obs.values()))
    assert (make_policy("local", env).act(env, o, False) == env.levels - 1).all()
    off = make_policy("offload", env).act(env, o, False)
    assert list(off - env.levels) == [0, 1, 2, 3, 0, 1]


def test_every_method_runs_and_fedmarl_federates_every_r_episodes() -> None:
    env = FedEdgeEnv(EnvConfig(agents=3, slots=40))
    cfg = DRQNConfig(hidden=16, dense=16, min_replay=2, batch_size=2, replay_capacity=16)
    for method in METHODS:
        policy = make_policy(method, env, federate_every=2, cfg=cfg)
        result = train_and_evaluate(env, policy, episodes=4, eval_episodes=1)
        assert len(result.returns) == 4
        assert 0.0 <= result.metrics["success_rate"] <= 1.0
        assert result.s_per_episode > 0
    fed = make_policy("fedmarl", env, federate_every=2, cfg=cfg)
    train_and_evaluate(env, fed, episodes=4, eval_episodes=1)
    federation = fed.federation  # type: ignore[attr-defined]
    assert federation.rounds == 2
    assert len(federation.costs) == 2  # secure: the protocol ran each time
    vectors = fed.net.online_vectors()  # type: ignore[attr-defined]
    assert np.array_equal(vectors[0], vectors[1])  # the 4th episode ended with an average
    with pytest.raises(ValueError, match="name"):
        make_policy("oracle", env)
    with pytest.raises(ValueError, match="federate_every"):
        make_policy("fedmarl", env, federate_every=0)


def test_a_seeded_federated_run_repeats_exactly() -> None:
    env = FedEdgeEnv(EnvConfig(agents=3, slots=40))
    cfg = DRQNConfig(hidden=16, dense=16, min_replay=2, batch_size=2, replay_capacity=16)

    def run() -> tuple[list[float], np.ndarray]:
        policy = make_policy("fedmarl", env, federate_every=1, cfg=cfg, seed=3)
        result = train_and_evaluate(env, policy, episodes=3, eval_episodes=1, seed=3)
        return result.returns, policy.net.online_vectors()  # type: ignore[attr-defined]

    (returns_a, net_a), (returns_b, net_b) = run(), run()
    assert returns_a == returns_b
    assert np.array_equal(net_a, net_b)  # secure rounding seeded: bit for bit
