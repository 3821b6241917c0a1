"""The centralised MARL baseline: VDN over one shared recurrent agent, with the global state.

Value decomposition (Sunehag et al., "Value-Decomposition Networks for Cooperative Multi-Agent
Learning", AAMAS 2018): the team's value is the sum of the agents' values, ``Q_tot = sum_i
Q(o_i, s, h_i, a_i)``, learnt from the team's reward (the sum of the agents' rewards) with a
double-Q target. All agents share one network (:class:`fedmarl.drqn` layers with one stacked
copy) whose input is the agent's observation, the mean over agents of the global state
(:meth:`fedmarl.env.FedEdgeEnv.state`, so the input does not grow with N) and the agent's
index as a fraction (to tell agents apart). Training is centralised: one learner sees every
agent's sequences; there is no federation. Replay is uniform over sequences (with burn-in),
our simplification of R2D2's prioritised replay for this baseline.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from fedmarl.drqn import DRQNConfig, StackedQNet, double_q, epsilon_at, epsilon_greedy
from fedmarl.env import FedEdgeEnv

__all__ = ["VDN"]


class VDN:
    """The shared agent of N agents (``name`` ``centralised`` in the comparison)."""

    def __init__(self, env: FedEdgeEnv, cfg: DRQNConfig | None = None, seed: int = 0) -> None:
        self.cfg = c = cfg or DRQNConfig(seed=seed)
        self.name = "centralised"
        self.learns = True
        self.n, self.n_actions = env.config.agents, env.n_actions
        self.in_size = 2 * env.obs_size + 1
        gen = torch.Generator().manual_seed(c.seed)
        self.online = StackedQNet(1, self.in_size, self.n_actions, c, gen)
        self.target = StackedQNet(1, self.in_size, self.n_actions, c, gen)
        self.target.copy_from(self.online)
        self.optimiser = torch.optim.Adam(list(self.online.params.values()), lr=c.learning_rate)
        cap, length = c.replay_capacity, c.length
        self._obs = np.zeros((cap, length + 1, self.n, self.in_size), dtype=np.float32)
        self._act = np.zeros((cap, length, self.n), dtype=np.int64)
        self._rew = np.zeros((cap, length), dtype=np.float32)
        self._h = np.zeros((cap, self.n, c.hidden), dtype=np.float32)
        self._c = np.zeros((cap, self.n, c.hidden), dtype=np.float32)
        self.size = self._next = self.steps = self.updates = 0
        self.rng = np.random.default_rng(c.seed)
        self.begin_episode()

    def _inputs(self, obs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``[N, 2 O + 1]``: own observation, the global state's mean, the agent's index."""
        mean = np.broadcast_to(obs.mean(axis=0), obs.shape)
        index = (np.arange(self.n, dtype=np.float32) / max(1, self.n - 1))[:, None]
        return np.concatenate([obs, mean, index], axis=1).astype(np.float32)

    def begin_episode(self) -> None:
        h = self.cfg.hidden
        self._state = (torch.zeros(1, self.n, h), torch.zeros(1, self.n, h))
        self._t_obs: list[npt.NDArray[np.float32]] = []
        self._t_act: list[npt.NDArray[np.int64]] = []
        self._t_rew: list[float] = []
        self._t_state: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = []

    def end_episode(self, episode: int) -> None:
        return None

    @property
    def epsilon(self) -> float:
        return epsilon_at(self.cfg, self.steps)

    def act(
        self, env: FedEdgeEnv, obs: npt.NDArray[np.float32], explore: bool
    ) -> npt.NDArray[np.int64]:
        x = self._inputs(obs)
        self._t_obs.append(x)
        h, c = self._state
        self._t_state.append((h[0].numpy().copy(), c[0].numpy().copy()))
        with torch.no_grad():
            q, self._state = self.online.forward(torch.from_numpy(x)[None, :, None], self._state)
        greedy = q[0, :, 0].argmax(dim=1).numpy().astype(np.int64)
        return epsilon_greedy(greedy, self.n_actions, self.epsilon, self.rng) if explore else greedy

    def observe(
        self,
        actions: npt.NDArray[np.int64],
        rewards: npt.NDArray[np.float64],
        next_obs: npt.NDArray[np.float32],
    ) -> None:
        c = self.cfg
        self._t_act.append(actions)
        self._t_rew.append(float(rewards.sum()))  # the team's reward
        self.steps += 1
        t = len(self._t_act)
        if t >= c.length and (t - c.length) % c.sequence_period == 0:
            s, i = t - c.length, self._next
            self._obs[i] = np.stack([*self._t_obs[s:t], self._inputs(next_obs)])
            self._act[i] = np.stack(self._t_act[s:t])
            self._rew[i] = self._t_rew[s:t]
            self._h[i], self._c[i] = self._t_state[s]
            self._next = (i + 1) % c.replay_capacity
            self.size = min(self.size + 1, c.replay_capacity)
            if self.size >= c.min_replay:
                self.learn()

    def learn(self) -> float:
        """One double-Q update of ``Q_tot``; the loss."""
        c = self.cfg
        idx = self.rng.integers(self.size, size=c.batch_size)
        b, n, burn = c.batch_size, self.n, c.burn_in_length
        # [B, L + 1, N, I] -> one stacked net over B * N sequences: [1, B * N, L + 1, I]
        obs = (
            torch.from_numpy(self._obs[idx]).permute(0, 2, 1, 3).reshape(1, b * n, -1, self.in_size)
        )
        act = torch.from_numpy(self._act[idx]).permute(0, 2, 1).reshape(1, b * n, -1)
        rew = torch.from_numpy(self._rew[idx])  # [B, L]
        state = (
            torch.from_numpy(self._h[idx]).reshape(1, b * n, -1),
            torch.from_numpy(self._c[idx]).reshape(1, b * n, -1),
        )
        taken, value = double_q(self.online, self.target, obs, act, state, burn)
        # Q_tot: the agents' values summed, per sequence of the batch ([B * N] -> [B, N])
        taken = taken.reshape(b, n, -1).sum(dim=1)
        value = value.reshape(b, n, -1).sum(dim=1)
        td = rew[:, burn:] + c.discount * value - taken
        loss = torch.nn.functional.smooth_l1_loss(td, torch.zeros_like(td))
        self.optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.online.params.values()), 10.0)
        self.optimiser.step()
        self.updates += 1
        if self.updates % c.target_update_period == 0:
            self.target.copy_from(self.online)
        return float(loss.detach())
