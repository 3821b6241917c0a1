"""Episodes: train a policy, evaluate it, and measure what an episode costs.

Metrics are the environment's (:meth:`fedmarl.env.FedEdgeEnv.metrics`: success rate, bits per
joule, mean latency, Jain's index, reliability; modelled by the environment), the learning
curve is the episode return (sum over agents and slots), and ``s_per_episode`` is the measured
wall time of a training episode (learning included).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedmarl.env import FedEdgeEnv
from fedmarl.policies import Policy

__all__ = ["RunResult", "episode", "train_and_evaluate"]


def episode(
    env: FedEdgeEnv, policy: Policy, seed: int, *, train: bool
) -> tuple[float, dict[str, float]]:
    """One episode from ``reset(seed)``: its return and the environment's metrics."""
    obs, _ = env.reset(seed=seed)
    policy.begin_episode()
    names = env.possible_agents
    total = 0.0
    while env.agents:
        o = np.stack([obs[a] for a in names])
        act = policy.act(env, o, explore=train)
        obs, rew, *_ = env.step({a: int(act[i]) for i, a in enumerate(names)})
        r = np.array([rew[a] for a in names])
        total += float(r.sum())
        if train and policy.learns:
            policy.observe(act, r, np.stack([obs[a] for a in names]))
    return total, env.metrics()


@dataclass(frozen=True)
class RunResult:
    """A policy's training curve (returns per episode), its evaluation (mean metrics over the
    evaluation seeds) and the measured seconds per training episode."""

    returns: list[float]
    metrics: dict[str, float]
    s_per_episode: float


def train_and_evaluate(
    env: FedEdgeEnv, policy: Policy, *, episodes: int, eval_episodes: int = 3, seed: int = 0
) -> RunResult:
    """Train ``policy`` for ``episodes`` (heuristics: just run them), then evaluate it greedily
    on ``eval_episodes`` seeds no training episode used."""
    if episodes < 0 or eval_episodes < 1:
        raise ValueError(
            f"`episodes` >= 0 and `eval_episodes` >= 1, got {episodes}, {eval_episodes}"
        )
    returns: list[float] = []
    started = time.perf_counter()
    for ep in range(episodes):
        ret, _ = episode(env, policy, seed * 100_003 + ep, train=True)
        returns.append(ret)
        policy.end_episode(ep)
    per_episode = (time.perf_counter() - started) / max(1, episodes)
    evals: list[dict[str, Any]] = [
        episode(env, policy, seed * 100_003 + 50_000 + k, train=False)[1]
        for k in range(eval_episodes)
    ]
    metrics = {key: float(np.nanmean([e[key] for e in evals])) for key in evals[0]}
    return RunResult(returns=returns, metrics=metrics, s_per_episode=per_episode)
