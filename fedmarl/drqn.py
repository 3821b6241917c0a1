"""Recurrent Q-learning for the edge agents: one DRQN per agent, all agents in one batched pass.

Each agent has its own network (dense -> LSTM -> dense over its composite action: compute
locally at a CPU level, or offload on a sub-band), trained as R2D2 trains its recurrent agent
(Kapturowski et al., "Recurrent Experience Replay in Distributed Reinforcement Learning",
ICLR 2019; the field names follow deepmind/acme's ``agents/jax/r2d2/config.py``):

- sequences of ``burn_in + trace_length`` transitions cut every ``sequence_period`` slots,
  stored with the recurrent state at their start;
- prioritised replay of sequences (priority ``eta max|delta| + (1 - eta) mean|delta|``,
  sampled with exponent ``priority_exponent``, importance weights with
  ``importance_sampling_exponent``);
- the burn-in steps only warm the stored state up (no gradient); the loss is the double-Q
  TD error (online net picks, target net values) over the rest, back-propagated through time;
- a target network copied every ``target_update_period`` updates.

R2D2's values (burn-in 40, trace 80, n-step 5, gamma 0.997) are for Atari's long episodes; ours
are shorter (our assumption: an episode is a few hundred 1 ms slots) and one-step.

The agents' parameters live in stacked tensors ``[N, ...]`` and every layer is a batched
matrix product over the agent dimension, so N agents act and learn in one pass, not in a
Python loop per agent. Federation averages :meth:`DRQN.online_vectors` across agents
(:mod:`fedmarl.federation`); replay, exploration and the target networks stay local.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

__all__ = [
    "DRQN",
    "DRQNConfig",
    "GreedyPlayers",
    "SequenceReplay",
    "StackedQNet",
    "double_q",
    "epsilon_at",
    "epsilon_greedy",
]


@dataclass(frozen=True)
class DRQNConfig:
    """Hyper-parameters (R2D2's names; our values, see the module docstring)."""

    hidden: int = 64
    """LSTM units."""
    dense: int = 64
    """Units of the dense layer before the LSTM."""
    learning_rate: float = 1e-3
    discount: float = 0.95
    burn_in_length: int = 8
    trace_length: int = 16
    sequence_period: int = 8
    """A new sequence starts every this many slots (sequences overlap by the rest)."""
    replay_capacity: int = 512
    """Sequences kept per agent."""
    batch_size: int = 16
    """Sequences per agent per update."""
    priority_exponent: float = 0.9
    importance_sampling_exponent: float = 0.6
    max_priority_weight: float = 0.9
    """``eta`` of the priority mix."""
    target_update_period: int = 100
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int = 3000
    min_replay: int = 16
    """Sequences per agent before learning starts."""
    seed: int = 0
    recurrent: bool = True
    """False: the LSTM is replaced by a dense layer and no state is carried (the independent
    DQN baseline; its sequences are then just batches of transitions)."""

    def __post_init__(self) -> None:
        for name in ("hidden", "dense", "trace_length", "sequence_period", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)}")
        if self.burn_in_length < 0:
            raise ValueError(f"`burn_in_length` must be >= 0, got {self.burn_in_length}")
        if not 0 <= self.discount < 1:
            raise ValueError(f"`discount` must be in [0, 1), got {self.discount}")
        if self.replay_capacity < self.batch_size:
            raise ValueError("`replay_capacity` must hold at least `batch_size` sequences")

    @property
    def length(self) -> int:
        """Transitions per stored sequence."""
        return self.burn_in_length + self.trace_length


def epsilon_at(cfg: DRQNConfig, steps: int) -> float:
    """The exploration rate after ``steps`` slots: linear from start to end over the decay."""
    frac = min(1.0, steps / max(1, cfg.epsilon_decay_steps))
    return cfg.epsilon_start + frac * (cfg.epsilon_end - cfg.epsilon_start)


def epsilon_greedy(
    greedy: npt.NDArray[np.int64], actions: int, epsilon: float, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Each of ``greedy`` ``[N]`` replaced by a uniform action with probability ``epsilon``."""
    random = rng.integers(actions, size=greedy.shape)
    return np.where(rng.random(greedy.shape) < epsilon, random, greedy)


def double_q(
    online: StackedQNet,
    target: StackedQNet,
    obs: torch.Tensor,
    actions: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    burn_in: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Q of the actions taken and their double-Q targets' values, ``[S, B, T]`` each.

    ``obs [S, B, L + 1, O]`` and ``actions [S, B, L]`` are sequences starting from ``state``;
    the first ``burn_in`` steps only warm the state up (no gradient). The online net picks the
    next action, the target net values it; only ``taken`` carries a gradient.
    """
    with torch.no_grad():
        if burn_in:
            _, online_state = online.forward(obs[:, :, :burn_in], state)
            _, target_state = target.forward(obs[:, :, :burn_in], state)
        else:
            online_state = target_state = state
        q_next_online, _ = online.forward(obs[:, :, burn_in:], online_state)
        q_next_target, _ = target.forward(obs[:, :, burn_in:], target_state)
    q, _ = online.forward(obs[:, :, burn_in:-1], online_state)
    taken = q.gather(-1, actions[:, :, burn_in:, None]).squeeze(-1)
    best = q_next_online[:, :, 1:].argmax(dim=-1, keepdim=True)
    value = q_next_target[:, :, 1:].gather(-1, best).squeeze(-1)
    return taken, value


def _init(n: int, fan_in: int, fan_out: int, gen: torch.Generator) -> torch.Tensor:
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(n, fan_in, fan_out, generator=gen) * 2 - 1) * bound


class StackedQNet:
    """N independent nets ``obs -> dense(ReLU) -> LSTM -> Q`` as stacked parameters."""

    def __init__(self, n: int, obs: int, actions: int, cfg: DRQNConfig, gen: torch.Generator):
        h, d = cfg.hidden, cfg.dense
        self.recurrent = cfg.recurrent
        self.params: dict[str, torch.Tensor] = {
            "w_in": _init(n, obs, d, gen),
            "b_in": torch.zeros(n, 1, d),
            "w_x": _init(n, d, 4 * h, gen),
            "w_h": _init(n, h, 4 * h, gen),
            "b_lstm": torch.zeros(n, 1, 4 * h),
            "w_out": _init(n, h, actions, gen),
            "b_out": torch.zeros(n, 1, actions),
        }
        for p in self.params.values():
            p.requires_grad_(True)

    def forward(
        self, obs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``obs [N, B, T, O]``, state ``([N, B, H], [N, B, H])`` -> ``Q [N, B, T, A]``."""
        p = self.params
        n, b, t, o = obs.shape
        x = torch.relu(torch.bmm(obs.reshape(n, b * t, o), p["w_in"]) + p["b_in"])
        gates_x = (torch.bmm(x, p["w_x"]) + p["b_lstm"]).reshape(n, b, t, -1)
        h, c = state
        if not self.recurrent:  # a dense layer in the LSTM's place (gates_x's first block)
            hs = torch.relu(gates_x[..., : h.shape[-1]]).reshape(n, b * t, -1)
            q = (torch.bmm(hs, p["w_out"]) + p["b_out"]).reshape(n, b, t, -1)
            return q, (h, c)
        outs = []
        for k in range(t):  # BPTT over the trace
            gates = gates_x[:, :, k] + torch.bmm(h, p["w_h"])
            i, f, g, o_ = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o_) * torch.tanh(c)
            outs.append(h)
        hs = torch.stack(outs, dim=2).reshape(n, b * t, -1)
        q = (torch.bmm(hs, p["w_out"]) + p["b_out"]).reshape(n, b, t, -1)
        return q, (h, c)

    def greedy(
        self, obs: npt.NDArray[np.float32], state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[npt.NDArray[np.int64], tuple[torch.Tensor, torch.Tensor]]:
        """One slot: ``[N]`` greedy actions for ``obs [N, O]`` and the next recurrent state
        (``([N, 1, H], [N, 1, H])``)."""
        with torch.no_grad():
            q, state = self.forward(torch.from_numpy(obs)[:, None, None], state)
        return q[:, 0, 0].argmax(dim=1).numpy().astype(np.int64), state

    def load(
        self, vectors: npt.NDArray[np.float32], rows: npt.NDArray[np.int64] | None = None
    ) -> None:
        """Set the nets of ``rows`` (default all) from flat ``[len(rows), P]`` vectors (the
        layout of :meth:`DRQN.online_vectors`); one row ``[1, P]`` sets every one of them.

        Raises:
            ValueError: ``vectors`` do not hold exactly ``P`` values per row.
        """
        rows = np.arange(self.params["w_in"].shape[0]) if rows is None else np.asarray(rows)
        need = sum(p[0].numel() for p in self.params.values())
        if vectors.ndim != 2 or vectors.shape[1] != need:
            raise ValueError(f"`vectors` must be [rows, {need}], got {list(vectors.shape)}")
        with torch.no_grad():
            start = 0
            for p in self.params.values():
                size = p[0].numel()
                block = torch.from_numpy(vectors[:, start : start + size])
                p[torch.from_numpy(rows)] = block.reshape(len(vectors), *p.shape[1:])
                start += size

    def copy_from(self, other: StackedQNet) -> None:
        with torch.no_grad():
            for k, v in other.params.items():
                self.params[k].copy_(v)


class GreedyPlayers:
    """N copies of one flat network (:meth:`DRQN.online_vectors`' layout) acting greedily,
    each with its own recurrent state: the other agents of an agent's replica of the world,
    or every agent of an evaluation, when all of them hold the same federated network."""

    def __init__(
        self, vector: npt.NDArray[np.float32], n: int, obs_size: int, actions: int, cfg: DRQNConfig
    ) -> None:
        self.n, self.cfg = n, cfg
        self.net = StackedQNet(n, obs_size, actions, cfg, torch.Generator().manual_seed(0))
        self.net.load(vector[None])
        self.begin_episode()

    def begin_episode(self) -> None:
        h = self.cfg.hidden
        self._state = (torch.zeros(self.n, 1, h), torch.zeros(self.n, 1, h))

    def act(self, obs: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        """``[N]`` greedy actions for ``obs [N, O]``."""
        actions, self._state = self.net.greedy(obs, self._state)
        return actions


class SequenceReplay:
    """Per-agent prioritised replay of fixed-length sequences (arrays ``[N, capacity, ...]``).

    A sequence holds ``L`` transitions: observations ``[L + 1, O]`` (the last is the next
    observation of the last step), actions and rewards ``[L]``, and the recurrent state at its
    start ``h, c [H]``.
    """

    def __init__(self, n: int, obs: int, cfg: DRQNConfig) -> None:
        cap, length, hid = cfg.replay_capacity, cfg.length, cfg.hidden
        self.cfg = cfg
        self.obs = np.zeros((n, cap, length + 1, obs), dtype=np.float32)
        self.actions = np.zeros((n, cap, length), dtype=np.int64)
        self.rewards = np.zeros((n, cap, length), dtype=np.float32)
        self.h = np.zeros((n, cap, hid), dtype=np.float32)
        self.c = np.zeros((n, cap, hid), dtype=np.float32)
        self.priority = np.zeros((n, cap))
        self.size = 0
        self._next = 0

    def add(
        self,
        obs: npt.NDArray[np.float32],
        actions: npt.NDArray[np.int64],
        rewards: npt.NDArray[np.float32],
        h: npt.NDArray[np.float32],
        c: npt.NDArray[np.float32],
    ) -> None:
        """One sequence per agent: ``obs [N, L + 1, O]``, ``actions, rewards [N, L]``,
        ``h, c [N, H]``; new sequences get the largest priority seen."""
        i = self._next
        self.obs[:, i], self.actions[:, i], self.rewards[:, i] = obs, actions, rewards
        self.h[:, i], self.c[:, i] = h, c
        top = self.priority[:, : self.size].max(axis=1) if self.size else np.ones(len(obs))
        self.priority[:, i] = np.maximum(top, 1e-3)
        self._next = (i + 1) % self.cfg.replay_capacity
        self.size = min(self.size + 1, self.cfg.replay_capacity)

    def sample(
        self, rng: np.random.Generator
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """``[N, B]`` sequence indices drawn by priority, and their importance weights."""
        cfg = self.cfg
        p = self.priority[:, : self.size] ** cfg.priority_exponent
        prob = p / p.sum(axis=1, keepdims=True)
        cum = np.cumsum(prob, axis=1)
        u = rng.random((len(p), cfg.batch_size))
        idx = np.minimum((u[:, :, None] > cum[:, None, :]).sum(axis=2), self.size - 1)
        chosen = np.take_along_axis(prob, idx, axis=1)
        w = (self.size * chosen) ** (-cfg.importance_sampling_exponent)
        return idx, w / w.max(axis=1, keepdims=True)


class DRQN:
    """N agents' DRQNs: act (epsilon-greedy, recurrent), record sequences, learn.

    Args:
        agents: N.
        obs_size: features per observation.
        actions: size of the composite action set.
    """

    def __init__(self, agents: int, obs_size: int, actions: int, cfg: DRQNConfig | None = None):
        self.cfg = c = cfg or DRQNConfig()
        self.n, self.obs_size, self.n_actions = agents, obs_size, actions
        gen = torch.Generator().manual_seed(c.seed)
        self.online = StackedQNet(agents, obs_size, actions, c, gen)
        self.target = StackedQNet(agents, obs_size, actions, c, gen)
        self.target.copy_from(self.online)
        self.optimiser = torch.optim.Adam(list(self.online.params.values()), lr=c.learning_rate)
        self.replay = SequenceReplay(agents, obs_size, c)
        self.rng = np.random.default_rng(c.seed)
        self.steps = 0
        self.updates = 0
        #: The sum of :meth:`learn`'s losses over the updates :meth:`observe` made.
        self.loss_sum = 0.0
        self.begin_episode()

    # -- acting -----------------------------------------------------------------------------
    def begin_episode(self) -> None:
        """Zero the recurrent state and the sequence being recorded."""
        h = self.cfg.hidden
        self._state = (torch.zeros(self.n, 1, h), torch.zeros(self.n, 1, h))
        self._trace_obs: list[npt.NDArray[np.float32]] = []
        self._trace_act: list[npt.NDArray[np.int64]] = []
        self._trace_rew: list[npt.NDArray[np.float32]] = []
        self._trace_state: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = []

    @property
    def epsilon(self) -> float:
        return epsilon_at(self.cfg, self.steps)

    def act(self, obs: npt.NDArray[np.float32], explore: bool = True) -> npt.NDArray[np.int64]:
        """``[N]`` actions for ``obs [N, O]`` (epsilon-greedy when ``explore``)."""
        self._trace_obs.append(obs.astype(np.float32))
        h, c = self._state
        self._trace_state.append((h[:, 0].numpy().copy(), c[:, 0].numpy().copy()))
        greedy, self._state = self.online.greedy(obs, self._state)
        return epsilon_greedy(greedy, self.n_actions, self.epsilon, self.rng) if explore else greedy

    def observe(
        self,
        actions: npt.NDArray[np.int64],
        rewards: npt.NDArray[np.float64],
        next_obs: npt.NDArray[np.float32],
    ) -> None:
        """Record one slot's transition; every ``sequence_period`` slots store a sequence of
        the last ``L`` transitions (with the state at its start) and learn."""
        c = self.cfg
        self._trace_act.append(actions)
        self._trace_rew.append(rewards.astype(np.float32))
        self.steps += 1
        t = len(self._trace_act)
        if t >= c.length and (t - c.length) % c.sequence_period == 0:
            s = t - c.length
            obs = np.stack([*self._trace_obs[s:t], next_obs.astype(np.float32)], axis=1)
            self.replay.add(
                obs,
                np.stack(self._trace_act[s:t], axis=1),
                np.stack(self._trace_rew[s:t], axis=1),
                *self._trace_state[s],
            )
            if self.replay.size >= c.min_replay:
                self.loss_sum += self.learn()

    # -- learning ---------------------------------------------------------------------------
    def learn(self) -> float:
        """One prioritised double-Q update of every agent's net; the mean loss."""
        c, rb = self.cfg, self.replay
        idx, weights = rb.sample(self.rng)
        rows = np.arange(self.n)[:, None]
        obs = torch.from_numpy(rb.obs[rows, idx])  # [N, B, L + 1, O]
        act = torch.from_numpy(rb.actions[rows, idx])
        rew = torch.from_numpy(rb.rewards[rows, idx])
        state = (torch.from_numpy(rb.h[rows, idx]), torch.from_numpy(rb.c[rows, idx]))
        burn = c.burn_in_length
        taken, value = double_q(self.online, self.target, obs, act, state, burn)
        td = rew[:, :, burn:] + c.discount * value - taken  # [N, B, T]
        w = torch.from_numpy(weights).float()[:, :, None]
        loss = (
            (w * torch.nn.functional.smooth_l1_loss(td, torch.zeros_like(td), reduction="none"))
            .mean(dim=(1, 2))
            .sum()
        )
        self.optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.online.params.values()), 10.0)
        self.optimiser.step()
        err = td.detach().abs()
        prio = c.max_priority_weight * err.amax(dim=2) + (1 - c.max_priority_weight) * err.mean(
            dim=2
        )
        rb.priority[rows, idx] = prio.numpy() + 1e-6
        self.updates += 1
        if self.updates % c.target_update_period == 0:
            self.target.copy_from(self.online)
        return float(loss.detach()) / self.n

    # -- federation -------------------------------------------------------------------------
    def online_vectors(self) -> npt.NDArray[np.float32]:
        """``[N, P]`` each agent's online network as one flat float32 vector."""
        with torch.no_grad():
            flat = [p.reshape(self.n, -1) for p in self.online.params.values()]
            return torch.cat(flat, dim=1).numpy().astype(np.float32)

    def load_online(
        self, vectors: npt.NDArray[np.float32], agents: npt.NDArray[np.int64] | None = None
    ) -> None:
        """Set the online networks of ``agents`` (default all) from ``[len(agents), P]``."""
        self.online.load(vectors, agents)
