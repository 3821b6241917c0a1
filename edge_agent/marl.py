"""The agent's side of ``mode: fedmarl``: its own DRQN, learning in its replica of the world.

An agent sees neither the other agents' networks nor their observations. Each round it plays
``episodes_per_round`` episodes of the Fed-MARL environment (:class:`fedmarl.env.FedEdgeEnv`,
one environment agent per UE of the experiment, in topology order). The episodes are seeded by
the experiment seed, the round and the episode, so every agent's replica has the same task
arrivals and fading; in its replica the agent acts (epsilon-greedy) and learns for its own
place, and the others act greedily with the round's federated network, the policy they all
start the round from (their recurrent states their own). Its online network starts each round
from the federated one; its target network, replay and exploration schedule stay its own
across rounds (DESIGN section 9). The change of its online network over the round is the
update the round aggregates, masked like a model update.

An evaluation plays ``eval_episodes`` episodes with every agent greedy on one network: every
agent's replica of it is then the same joint episode, and each agent reports its own place's
tasks, so the sums over the agents are the joint episode's. All its figures are modelled by
the environment. Kept Python 3.8 compatible, like the rest of the agent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from protocol.rounds import EvalReport
from protocol.spec import FedMarlSpec

__all__ = ["MarlPlayer", "MarlRound", "eval_report", "initial_network"]

#: Seeds of the round's world: training episodes, then evaluation episodes above this offset.
_EVAL_SEED_OFFSET = 500_000


def _world_seed(seed: int, round_index: int, episode: int) -> int:
    return (seed * 1_000_003 + (round_index + 1) * 1_009 + episode) % (2**32)


def _environment(config: Dict[str, Any], n_agents: int, profiles: Sequence[str]) -> Any:
    from fedmarl.env import EnvConfig, FedEdgeEnv

    spec = FedMarlSpec.model_validate(config)
    if len(profiles) != n_agents:
        raise ValueError(f"`profiles` must name {n_agents} agents, got {len(profiles)}")
    return FedEdgeEnv(
        EnvConfig(
            agents=n_agents, subbands=spec.subbands, slots=spec.slots, profiles=tuple(profiles)
        )
    )


def initial_network(
    config: Dict[str, Any], n_agents: int, profiles: Sequence[str], seed: int
) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """The common initial network of every agent (seeded by the experiment seed): its tensors
    by name (no agent dimension) and their order, the layout of its flat vector."""
    from fedmarl.drqn import DRQN, DRQNConfig

    env = _environment(config, n_agents, profiles)
    lr = FedMarlSpec.model_validate(config).learning_rate
    net = DRQN(1, env.obs_size, env.n_actions, DRQNConfig(seed=seed, learning_rate=lr))
    tensors = {k: v.detach()[0].numpy().copy() for k, v in net.online.params.items()}
    return tensors, list(tensors)


def eval_report(got: Dict[str, float]) -> EvalReport:
    """An evaluation (:meth:`MarlPlayer.evaluate`) as the agent reports it: ``correct`` and
    ``total`` its completed and arrived tasks, ``test_loss`` minus its reward per slot, and
    ``train_loss`` its task failure rate, so the round's ``fairness_var`` is the variance of
    the agents' failure rates."""
    return EvalReport(
        correct=int(got["completed"]),
        total=int(got["arrived"]),
        test_loss=-got["reward_per_slot"],
        train_loss=1.0 - got["success_rate"],
        fedmarl={k: v for k, v in got.items() if np.isfinite(v)},
    )


@dataclass(frozen=True)
class MarlRound:
    """One round of local learning: ``delta`` (float32 ``[P]``, the online network's change),
    the mean TD loss of its updates (0 before learning starts), the transitions it saw, and
    its wall time, s (measured)."""

    delta: np.ndarray
    loss: float
    transitions: int
    seconds: float


class MarlPlayer:
    """One agent's DRQN in its replica of the Fed-MARL environment.

    Args:
        config: ``protocol.spec.FedMarlSpec`` as JSON.
        agent_index: this agent's place in the environment; n_agents: how many there are.
        profiles: every agent's device profile (built-in boards), in agent order.
        seed: the experiment seed (the world's); the agent's own draws (exploration, replay)
            are seeded by it and its place.
    """

    def __init__(
        self,
        config: Dict[str, Any],
        agent_index: int,
        n_agents: int,
        profiles: Sequence[str],
        seed: int,
    ) -> None:
        from fedmarl.drqn import DRQN, DRQNConfig

        if not 0 <= agent_index < n_agents:
            raise ValueError(f"`agent_index` must be in [0, {n_agents}), got {agent_index}")
        self.spec = FedMarlSpec.model_validate(config)
        self.env = _environment(config, n_agents, profiles)
        self.index, self.seed = agent_index, seed
        own = seed * 1_000 + agent_index + 1
        self.cfg = DRQNConfig(seed=own, learning_rate=self.spec.learning_rate)
        self.learner = DRQN(1, self.env.obs_size, self.env.n_actions, self.cfg)
        self._federated_once = False

    def _players(self, vector: np.ndarray, n: int) -> Any:
        from fedmarl.drqn import GreedyPlayers

        return GreedyPlayers(vector, n, self.env.obs_size, self.env.n_actions, self.cfg)

    def train(self, federated: np.ndarray, round_index: int) -> MarlRound:
        """Learn for ``episodes_per_round`` episodes from the ``federated`` network ``[P]``."""
        started = time.perf_counter()
        me, env, i = self.learner, self.env, self.index
        vector = np.ascontiguousarray(federated, dtype=np.float32)
        me.load_online(vector[None])
        if not self._federated_once:  # the target starts from the common network too
            me.target.copy_from(me.online)
            self._federated_once = True
        others = self._players(vector, env.config.agents - 1)
        rest = np.array([k for k in range(env.config.agents) if k != i])
        names = env.possible_agents
        loss_before, updates_before, steps_before = me.loss_sum, me.updates, me.steps
        for episode in range(self.spec.episodes_per_round):
            obs, _ = env.reset(seed=_world_seed(self.seed, round_index, episode))
            me.begin_episode()
            others.begin_episode()
            while env.agents:
                o = np.stack([obs[a] for a in names])
                act = np.empty(len(names), dtype=np.int64)
                act[i] = me.act(o[i : i + 1], explore=True)[0]
                act[rest] = others.act(o[rest])
                obs, rew, *_ = env.step({a: int(act[k]) for k, a in enumerate(names)})
                me.observe(act[i : i + 1], np.array([rew[names[i]]]), obs[names[i]][None])
        updates = me.updates - updates_before
        delta = me.online_vectors()[0] - vector
        return MarlRound(
            delta=delta.astype(np.float32),
            loss=(me.loss_sum - loss_before) / updates if updates else 0.0,
            transitions=me.steps - steps_before,
            seconds=time.perf_counter() - started,
        )

    def evaluate(self, federated: np.ndarray, round_index: int) -> Dict[str, float]:
        """Every agent greedy on ``federated`` for ``eval_episodes`` episodes: this agent's
        own ``arrived`` and ``completed`` tasks, ``success_rate``, ``bits_per_joule``,
        ``mean_latency_slots``, ``reliability`` (URLLC success rate) and ``reward_per_slot``,
        pooled over the episodes."""
        return self.evaluate_places(federated, round_index, [self.index])[0]

    def evaluate_places(
        self, federated: np.ndarray, round_index: int, places: Sequence[int]
    ) -> List[Dict[str, float]]:
        """:meth:`evaluate` as the agents at ``places`` report it, from one run: with every
        agent greedy on one network, every agent's replica of the evaluation is the same joint
        episode (the in-process simulator scores all its agents this way)."""
        env = self.env
        n = env.config.agents
        at = np.asarray(places, dtype=np.int64)
        if at.size and (at.min() < 0 or at.max() >= n):
            raise ValueError(f"`places` must lie in [0, {n}), got {list(places)}")
        players = self._players(np.ascontiguousarray(federated, dtype=np.float32), n)
        names = env.possible_agents
        keys = ("arrived", "completed", "urllc", "urllc_done", "bits", "energy", "latency")
        tot = {k: np.zeros(at.size) for k in (*keys, "reward")}
        slots = 0
        for episode in range(self.spec.eval_episodes):
            seed = _world_seed(self.seed, round_index, _EVAL_SEED_OFFSET + episode)
            obs, _ = env.reset(seed=seed)
            players.begin_episode()
            while env.agents:
                act = players.act(np.stack([obs[a] for a in names]))
                obs, rew, *_ = env.step({a: int(act[k]) for k, a in enumerate(names)})
                tot["reward"] += np.array([float(rew[names[i]]) for i in at])
                slots += 1
            arrived, completed = env.counts["arrived"][at], env.counts["completed"][at]
            tot["arrived"] += arrived.sum(axis=1)
            tot["completed"] += completed.sum(axis=1)
            tot["urllc"] += arrived[:, 0]
            tot["urllc_done"] += completed[:, 0]
            tot["bits"] += env.completed_bits[at]
            tot["energy"] += env.energy_j[at]
            tot["latency"] += env.latency_slots[at]
        out: List[Dict[str, float]] = []
        for k in range(at.size):
            got = {key: float(v[k]) for key, v in tot.items()}
            done = got["completed"]
            out.append(
                {
                    "arrived": got["arrived"],
                    "completed": done,
                    "success_rate": done / got["arrived"] if got["arrived"] else 1.0,
                    "bits_per_joule": got["bits"] / got["energy"] if got["energy"] > 0 else 0.0,
                    "mean_latency_slots": got["latency"] / done if done else float("nan"),
                    "reliability": got["urllc_done"] / got["urllc"] if got["urllc"] else 1.0,
                    "reward_per_slot": got["reward"] / max(1.0, float(slots)),
                }
            )
        return out
