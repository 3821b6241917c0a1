"""Federated DRQNs through the real secure aggregation: the secure average equals the plain
average exactly where the inputs are on the protocol's fixed-point grid; with one agent
dropped mid-round the round still completes; the agents' networks change only by the average."""

from __future__ import annotations

import numpy as np
import pytest

from fedmarl.drqn import DRQN, DRQNConfig
from fedmarl.federation import Federation

AGENTS = [f"agent_{i}" for i in range(4)]
STEP = 2.0**-16  # the protocol's resolution at 16 fraction bits


def _on_grid(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values that ``weight * value`` (weight 1/4) keeps on the grid: multiples of 4 steps."""
    return (rng.integers(-4000, 4000, size=shape) * 4 * STEP).astype(np.float32)


def test_secure_average_equals_the_plain_average_of_quantised_weights_exactly() -> None:
    rng = np.random.default_rng(0)
    reference = _on_grid(rng, (300,))
    vectors = reference + _on_grid(rng, (4, 300))
    secure, who = Federation(AGENTS).average(vectors, reference)
    plain, _ = Federation(AGENTS, secure=False).average(vectors, reference)
    assert who == AGENTS
    assert np.array_equal(secure, plain)
    assert np.array_equal(
        plain, (reference + (vectors - reference).mean(axis=0)).astype(np.float32)
    )


def test_one_agent_dropped_mid_round_the_round_completes() -> None:
    rng = np.random.default_rng(1)
    reference = np.zeros(200, dtype=np.float32)
    vectors = rng.normal(0, 0.1, size=(4, 200)).astype(np.float32)
    fed = Federation(AGENTS)
    averaged, who = fed.average(vectors, reference, arrived=AGENTS[:3])
    assert who == AGENTS[:3]
    assert np.abs(averaged - vectors[:3].mean(axis=0)).max() <= 3 * STEP  # a step per input
    assert fed.costs[-1].contributors == 3
    assert fed.costs[-1].uplink_bytes > 4 * 200  # masked inputs of 3 agents, 4 key exchanges


def test_a_seeded_federation_repeats_exactly_and_the_seed_matters() -> None:
    rng = np.random.default_rng(2)
    reference = np.zeros(500, dtype=np.float32)
    vectors = rng.normal(0, 0.1, size=(4, 500)).astype(np.float32)  # off the grid: rounded
    one, _ = Federation(AGENTS, seed=7).average(vectors, reference)
    two, _ = Federation(AGENTS, seed=7).average(vectors, reference)  # fresh keys, same sum
    other, _ = Federation(AGENTS, seed=8).average(vectors, reference)
    assert np.array_equal(one, two)
    assert not np.array_equal(one, other)
    assert np.abs(one - other).max() <= 4 * STEP  # only the rounding differs


def test_federating_drqns_sets_every_online_network_to_the_average() -> None:
    agent = DRQN(4, 6, 5, DRQNConfig(hidden=8, dense=8, seed=3))
    before = agent.online_vectors()
    target_before = agent.target.params["w_out"].detach().clone()
    reference = before[0].copy()
    averaged, _ = Federation(AGENTS).average(before, reference)
    agent.load_online(np.repeat(averaged[None], 4, axis=0))
    after = agent.online_vectors()
    assert np.allclose(after, before.mean(axis=0)[None], rtol=0, atol=4 * STEP)
    assert (after == after[0]).all()
    assert agent.target.params["w_out"].equal(target_before)  # target networks stay local


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="agents"):
        Federation(["solo"])
    with pytest.raises(ValueError, match="vectors"):
        Federation(AGENTS).average(np.zeros((3, 5), np.float32), np.zeros(5, np.float32))
