"""The edge agents' policies behind one interface: the federated DRQN and the baselines.

- ``fedmarl``: the agents' DRQNs (:mod:`fedmarl.drqn`), federated every R episodes through
  secure aggregation (:mod:`fedmarl.federation`);
- ``centralised``: VDN over one shared recurrent agent that also sees the global state
  (:mod:`fedmarl.vdn`), trained centrally on the team's reward;
- ``dqn``: independent DQN, no recurrence and no federation (each agent alone);
- ``local``: everything computed locally at the highest CPU level;
- ``offload``: everything offloaded, each agent on a sub-band of its own where there are
  enough (agent ``i`` on sub-band ``i mod K``);
- ``random``: a uniformly random action;
- ``greedy``: compute locally at the lowest CPU level that meets the head task's deadline
  (DVFS to the deadline); where none does, offload on a sub-band without a collision last
  slot (drawn at random among them).

Every policy sees the environment's observations; the heuristics also read the agent's own
head task and channel from the environment (what the agent itself knows), never the others'.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from fedmarl.drqn import DRQN, DRQNConfig
from fedmarl.env import FedEdgeEnv
from fedmarl.federation import Federation

__all__ = ["METHODS", "Policy", "make_policy"]

NDArrayInt = npt.NDArray[np.int64]


class Policy(Protocol):
    """What an episode loop needs of a policy (``[N]`` arrays, agent order of the env)."""

    name: str
    learns: bool

    def begin_episode(self) -> None: ...

    def act(self, env: FedEdgeEnv, obs: npt.NDArray[np.float32], explore: bool) -> NDArrayInt: ...

    def observe(
        self,
        actions: NDArrayInt,
        rewards: npt.NDArray[np.float64],
        next_obs: npt.NDArray[np.float32],
    ) -> None: ...

    def end_episode(self, episode: int) -> None: ...


class _Heuristic:
    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.learns = False
        self.rng = np.random.default_rng(seed)

    def begin_episode(self) -> None:
        return None

    def observe(
        self,
        actions: NDArrayInt,
        rewards: npt.NDArray[np.float64],
        next_obs: npt.NDArray[np.float32],
    ) -> None:
        return None

    def end_episode(self, episode: int) -> None:
        return None

    def act(self, env: FedEdgeEnv, obs: npt.NDArray[np.float32], explore: bool) -> NDArrayInt:
        n, k = env.config.agents, env.config.subbands
        if self.name == "local":
            return np.full(n, env.levels - 1, dtype=np.int64)
        if self.name == "offload":
            return env.levels + np.arange(n, dtype=np.int64) % k
        if self.name == "random":
            return self.rng.integers(env.n_actions, size=n).astype(np.int64)
        return _greedy(env, self.rng)


def _greedy(env: FedEdgeEnv, rng: np.random.Generator) -> NDArrayInt:
    """DVFS to the deadline: the lowest CPU level that finishes the head task in time; where
    none does, offload on a sub-band drawn among those without a collision last slot (the
    least loaded the agent can tell; random, so agents do not all move to the same one)."""
    c = env.config
    head = np.clip(env.q_class[:, 0], 0, None)
    cycles = env._bits[head] * env.q_left[:, 0] * env._cpb[head]
    slack = np.maximum(1, env._deadline[head] - env.q_age[:, 0] - 1)  # slots left
    need_hz = cycles / (slack * c.slot_s)  # [N]
    fits = env.freq_hz >= need_hz[:, None]  # [N, levels]
    free = ~env.collided
    free = np.where(free.any(axis=1, keepdims=True), free, True)
    weights = free * rng.random(free.shape)
    band = weights.argmax(axis=1)
    return np.where(fits.any(axis=1), fits.argmax(axis=1), env.levels + band).astype(np.int64)


class _Learner:
    """The DRQN (or its non-recurrent variant) of every agent; ``federation`` averages the
    online networks every ``every`` episodes."""

    def __init__(
        self,
        name: str,
        env: FedEdgeEnv,
        cfg: DRQNConfig,
        federation: Federation | None,
        every: int,
    ) -> None:
        self.name = name
        self.learns = True
        self.net = DRQN(env.config.agents, env.obs_size, env.n_actions, cfg)
        self.federation = federation
        self.every = every
        self.reference = self.net.online_vectors()[0].copy()
        if federation is not None:  # a common start, as a federated model has
            self.net.load_online(np.repeat(self.reference[None], env.config.agents, axis=0))
            self.net.target.copy_from(self.net.online)

    def begin_episode(self) -> None:
        self.net.begin_episode()

    def act(self, env: FedEdgeEnv, obs: npt.NDArray[np.float32], explore: bool) -> NDArrayInt:
        return self.net.act(obs, explore=explore)

    def observe(
        self,
        actions: NDArrayInt,
        rewards: npt.NDArray[np.float64],
        next_obs: npt.NDArray[np.float32],
    ) -> None:
        self.net.observe(actions, rewards, next_obs)

    def end_episode(self, episode: int) -> None:
        if self.federation is None or (episode + 1) % self.every:
            return
        averaged, _ = self.federation.average(self.net.online_vectors(), self.reference)
        self.reference = averaged
        self.net.load_online(np.repeat(averaged[None], self.net.n, axis=0))


#: The methods of the comparison: the proposed one first.
METHODS = ("fedmarl", "centralised", "dqn", "local", "offload", "random", "greedy")


def make_policy(
    name: str,
    env: FedEdgeEnv,
    *,
    seed: int = 0,
    federate_every: int = 2,
    secure: bool = True,
    cfg: DRQNConfig | None = None,
) -> Policy:
    """The policy ``name`` (one of :data:`METHODS`) for ``env``'s agents.

    Raises:
        ValueError: an unknown ``name``, or ``federate_every`` below 1.
    """
    if federate_every < 1:
        raise ValueError(f"`federate_every` must be at least 1, got {federate_every}")
    base = cfg or DRQNConfig(seed=seed)
    if name == "fedmarl":
        fed = (
            Federation(env.possible_agents, secure=secure, seed=seed)
            if env.config.agents > 1
            else None
        )
        return _Learner(name, env, base, fed, federate_every)
    if name == "centralised":
        from fedmarl.vdn import VDN

        return VDN(env, base)
    if name == "dqn":
        flat = DRQNConfig(**{**base.__dict__, "recurrent": False, "burn_in_length": 0})
        return _Learner(name, env, flat, None, federate_every)
    if name in ("local", "offload", "random", "greedy"):
        return _Heuristic(name, seed)
    raise ValueError(f"`name` must be one of {METHODS}, got {name!r}")
