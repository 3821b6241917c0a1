"""The actor-critic power policy of CRA (DESIGN section 6), in torch.

One network is shared by all users: each user's row of features (its channel from the CSI, its
board, the round's trade-off, and the link outcome of its last round: lost or not, HARQ retries,
planned-vs-true SINR) is concatenated with the mean of all rows and mapped to a Gaussian over a
pre-squash action ``z``; the power is ``P_max (p_min + (1 - p_min) sigmoid(z))``, so it always
lies in ``(0, P_max]`` and the policy works for any number of users. With ``bandwidth_head`` a
second output gives bandwidth logits (the DRL-RA baseline, no convex part). The critic maps the
mean of per-user embeddings to the expected (per-user) reward.

Every round is one step of a contextual bandit: the state is the round's instance and the last
link outcomes, the action the users' powers, the reward ``R_t`` (section 6) of the round that
action produced: too little power fails blocks (retries, lost updates that cost the deadline),
too much costs energy. The update is the advantage actor-critic step
``-(R - V(s)) log pi(a|s)`` plus the critic's squared error. Offline training in simulation
lives in :mod:`controller.policy.training`; online, :meth:`PowerPolicy.observe` takes the
reward of the last action.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from controller.allocation.bandwidth import uniform_bandwidth
from controller.allocation.instance import AllocationInstance
from controller.allocation.system_model import comm_latency
from protocol.arrays import NDArrayFloat

__all__ = ["N_FEATURES", "PolicyAction", "PowerPolicy", "PowerPolicyConfig", "user_features"]

#: Features of the instance (7) plus the last link outcome (3, ``controller.round.link_features``).
N_FEATURES = 10
_LINK_COLUMNS = 3
_FORMAT = 2


@dataclass(frozen=True)
class PowerPolicyConfig:
    """Hyper-parameters of the actor-critic."""

    hidden: int = 64
    """Width of the hidden layers."""
    lr_actor: float = 1e-2
    """Adam step size of the actor."""
    lr_critic: float = 1e-2
    """Adam step size of the critic."""
    init_log_std: float = -0.5
    """Initial log standard deviation of the Gaussian over ``z``."""
    min_power_fraction: float = 0.02
    """``p_min``: the least power as a fraction of ``P_max``."""
    entropy_coef: float = 1e-3
    """Weight of the entropy bonus."""
    bandwidth_head: bool = False
    """Also output bandwidth logits (DRL-RA)."""
    seed: int = 0
    """Seed of the network's initial weights and of the exploration noise."""


def user_features(inst: AllocationInstance, link_state: NDArrayFloat | None = None) -> NDArrayFloat:
    """Per-user state of the policy, ``[U, N_FEATURES]`` float64, dimensionless, clipped to +-10.

    Columns: log SNR at full power on an equal share of ``B``; log of upload over training time
    (full power, ``f_max``); log training time relative to the median; log upload over training
    energy; log of the energy-vs-latency price ``beta P_max / (gamma / U)``; the z-score of the
    log SNR among the users; ``ln U``; then the 3 columns of ``link_state`` ``[U, 3]`` (the
    last round's link outcome; zeros when None).
    """
    u = inst.n_users
    b = uniform_bandwidth(inst)
    a = inst.snr_bandwidth_hz(inst.p_max_w)
    snr = np.log(a / b)
    tau = comm_latency(b, a, inst.update_bits)
    t_comp = inst.workload_cycles / inst.f_max_hz
    e_comm = inst.p_max_w * tau
    e_comp = inst.kappa * inst.workload_cycles * inst.f_max_hz**2 + 1e-12
    w = inst.weights
    price = np.log((w.beta * inst.p_max_w + 1e-9) / (w.gamma / u + 1e-9))
    spread = snr.std() + 1e-6
    feats = np.stack(
        [
            snr / 5.0,
            np.log(tau / t_comp),
            np.log(t_comp / np.median(t_comp)),
            np.log(e_comm / e_comp),
            price / 5.0,
            (snr - snr.mean()) / spread,
            np.full(u, math.log(u) / 5.0),
        ],
        axis=1,
    )
    link = np.zeros((u, _LINK_COLUMNS)) if link_state is None else np.asarray(link_state, float)
    if link.shape != (u, _LINK_COLUMNS):
        raise ValueError(f"`link_state` must have shape ({u}, {_LINK_COLUMNS}), got {link.shape}.")
    return np.clip(np.concatenate([feats, link], axis=1), -10.0, 10.0)


class _Net(nn.Module):
    def __init__(self, cfg: PowerPolicyConfig) -> None:
        super().__init__()
        h, out = cfg.hidden, 2 if cfg.bandwidth_head else 1
        head = nn.Linear(h, out)
        with torch.no_grad():  # start near half power, nearly independent of the state
            head.bias.fill_(0.0)
            head.weight.mul_(0.1)
        self.actor = nn.Sequential(
            nn.Linear(2 * N_FEATURES, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), head
        )
        self.embed = nn.Sequential(nn.Linear(2 * N_FEATURES, h), nn.Tanh())
        self.value = nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1))
        self.log_std = nn.Parameter(torch.full((out,), cfg.init_log_std))

    @staticmethod
    def _inputs(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x.mean(dim=0, keepdim=True).expand_as(x)], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``[U, F]`` -> action means ``[U, out]`` and the state value (scalar)."""
        inp = self._inputs(x)
        return self.actor(inp), self.value(self.embed(inp).mean(dim=0)).squeeze(-1)


@dataclass
class PolicyAction:
    """One sampled action: powers ``[U]`` W, optional bandwidth logits ``[U]``, and its record."""

    power_w: NDArrayFloat
    bandwidth_logits: NDArrayFloat | None
    features: NDArrayFloat
    z: NDArrayFloat


class PowerPolicy:
    """The shared actor-critic power policy: act, learn from rewards, save and load."""

    def __init__(self, config: PowerPolicyConfig | None = None) -> None:
        self.config = config or PowerPolicyConfig()
        torch.manual_seed(self.config.seed)
        self.net = _Net(self.config)
        actor_params = [*self.net.actor.parameters(), self.net.log_std]
        critic_params = [*self.net.embed.parameters(), *self.net.value.parameters()]
        self._opt_actor = torch.optim.Adam(actor_params, lr=self.config.lr_actor)
        self._opt_critic = torch.optim.Adam(critic_params, lr=self.config.lr_critic)
        self._gen = torch.Generator().manual_seed(self.config.seed + 1)
        self._last: PolicyAction | None = None
        self.reward_scale = 1.0  # running RMS of rewards (online updates)
        self._n_seen = 0

    # -- acting -------------------------------------------------------------------------------

    def _power(self, inst: AllocationInstance, z: torch.Tensor) -> NDArrayFloat:
        pmin = self.config.min_power_fraction
        frac = pmin + (1.0 - pmin) * torch.sigmoid(z).numpy().astype(np.float64)
        return np.asarray(inst.p_max_w * frac, dtype=np.float64)

    @property
    def pending(self) -> PolicyAction | None:
        """The last action taken by :meth:`act` whose reward has not been observed yet."""
        return self._last

    def act(
        self,
        inst: AllocationInstance,
        *,
        link_state: NDArrayFloat | None = None,
        explore: bool = False,
    ) -> PolicyAction:
        """Powers for ``inst`` (``explore``: sampled; else the mean action). Records the action.

        ``link_state``: ``[U, 3]`` the users' last link outcomes (see :func:`user_features`).
        """
        feats = user_features(inst, link_state)
        with torch.no_grad():
            mean, _ = self.net(torch.as_tensor(feats, dtype=torch.float32))
            if explore:
                noise = torch.randn(mean.shape, generator=self._gen)
                z = mean + noise * self.net.log_std.exp()
            else:
                z = mean
        act = PolicyAction(
            power_w=self._power(inst, z[:, 0]),
            bandwidth_logits=z[:, 1].numpy().astype(np.float64) if z.shape[1] > 1 else None,
            features=feats,
            z=z.numpy().astype(np.float64),
        )
        self._last = act
        return act

    # -- learning -----------------------------------------------------------------------------

    def update(self, actions: list[PolicyAction], rewards: list[float]) -> dict[str, float]:
        """One actor-critic step on a batch of (action, reward); rewards per user, any scale.

        Returns:
            ``actor_loss``, ``critic_loss`` and the mean reward of the batch.
        """
        if len(actions) != len(rewards) or not actions:
            raise ValueError("`actions` and `rewards` must be non-empty and of equal length.")
        r = torch.tensor(rewards, dtype=torch.float32)
        logps, values, ents = [], [], []
        for act in actions:
            mean, value = self.net(torch.as_tensor(act.features, dtype=torch.float32))
            std = self.net.log_std.exp().expand_as(mean)
            dist = torch.distributions.Normal(mean, std)
            logps.append(dist.log_prob(torch.as_tensor(act.z, dtype=torch.float32)).sum())
            ents.append(dist.entropy().mean())
            values.append(value)
        v = torch.stack(values)
        adv = r - v.detach()
        if len(actions) > 1:  # the batch mean is a second baseline while the critic warms up
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        actor_loss = (
            -(adv * torch.stack(logps)).mean() - self.config.entropy_coef * torch.stack(ents).mean()
        )
        critic_loss = ((v - r) ** 2).mean()
        self._opt_actor.zero_grad()
        actor_loss.backward()
        self._opt_actor.step()
        self._opt_critic.zero_grad()
        critic_loss.backward()
        self._opt_critic.step()
        return {
            "actor_loss": float(actor_loss.detach()),
            "critic_loss": float(critic_loss.detach()),
            "mean_reward": float(r.mean()),
        }

    def observe(self, reward: float, n_users: int | None = None) -> dict[str, float] | None:
        """Online update from the reward ``R_t`` of the last action taken with :meth:`act`.

        The reward is divided by the number of users and by a running RMS, so the step size does
        not depend on the reward's units. Returns the losses, or None if no action is pending.
        """
        if self._last is None:
            return None
        if not math.isfinite(reward):
            raise ValueError(f"`reward` must be finite, got {reward!r}.")
        u = n_users or self._last.features.shape[0]
        r = reward / u
        self._n_seen += 1
        self.reward_scale += (abs(r) - self.reward_scale) / min(self._n_seen, 100)
        out = self.update([self._last], [r / max(self.reward_scale, 1e-12)])
        self._last = None
        return out

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write everything needed to continue to ``path`` (a torch file, written atomically)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        blob = {
            "format": _FORMAT,
            "config": asdict(self.config),
            "state": self.net.state_dict(),
            "opt_actor": self._opt_actor.state_dict(),
            "opt_critic": self._opt_critic.state_dict(),
            "generator": self._gen.get_state(),
            "reward_scale": self.reward_scale,
            "n_seen": self._n_seen,
        }
        tmp = p.with_name(p.name + ".tmp")
        torch.save(blob, tmp)
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | Path) -> PowerPolicy:
        """Read a policy written by :meth:`save` (weights only: no code is unpickled)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"`policy_path`: no policy file at {p}")
        try:
            blob = torch.load(p, map_location="cpu", weights_only=True)
        except (RuntimeError, ValueError, OSError) as err:
            raise ValueError(f"`policy_path`: {p} is not a power-policy file ({err})") from None
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
            raise ValueError(
                f"`policy_path`: {p} has policy format {found!r}, this version reads {_FORMAT} "
                "(retrain it with `testbed train power-policy`)"
            )
        try:
            policy = cls(PowerPolicyConfig(**blob["config"]))
            policy.net.load_state_dict(blob["state"])
            policy._opt_actor.load_state_dict(blob["opt_actor"])
            policy._opt_critic.load_state_dict(blob["opt_critic"])
            policy._gen.set_state(blob["generator"])
            policy.reward_scale = float(blob["reward_scale"])
            policy._n_seen = int(blob["n_seen"])
        except (KeyError, TypeError, RuntimeError, ValueError) as err:
            raise ValueError(f"`policy_path`: {p} is not a power-policy file ({err})") from None
        return policy
