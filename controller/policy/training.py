"""Offline training of the power policy in simulation (``testbed train power-policy``).

Read top to bottom: a config dataclass, the simulated round, one seeding block, the loop.

Every sampled action is scored by the same link layer a run uses (DESIGN section 12): the
powers are fused (bandwidth re-solved for them, then CSM and DVFS rounding), the link is planned
from the estimated gain (MCS from the planned SINR minus the back-off, transport blocks), the
deadline is derived from the plan, each transmission attempt meets a true channel that has aged
from the estimate, and HARQ plays out with seeded uniforms (:func:`controller.link.transmit`).
The reward is ``R_t`` of DESIGN section 6 with no accuracy term (simulation trains no model):
``-beta sum_u E_u - gamma sum_u T_u`` per user, with ``E_u = P_u airtime_u + kappa_u c_u D_u
f_u^2`` and ``T_u`` the arrival time, or the deadline for a lost update.

The true channel is this module's own stand-in for the sim world (the controller never imports
``sim_backend``): block fading, ``G_u(t) = G^_u X_{u,k}`` with ``k = floor(t / coherence_s)``
and ``X_{u,k}`` i.i.d. unit-mean ``Gamma(N, 1/N)``, the normalised power of ``N`` independent
Rayleigh branches combined by MR; so the estimate is the channel's mean, attempts within one
coherence block see the same fade and blocks fade independently. With ``N = 4`` a block fades
more than 3 dB below the estimate about 14% of the time.

The policy is trained on short episodes: a few rounds on one instance, round 1 with a zero
link state, each later round with the previous round's outcome in the columns of
:func:`controller.round.link_features`, so it learns to read them. Each round is one sample of
the contextual bandit of :mod:`controller.policy.policy`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from controller.allocation.bandwidth import softmax
from controller.allocation.fusion import fuse
from controller.allocation.instance import Allocation, AllocationInstance, ObjectiveWeights
from controller.allocation.pipeline import BandwidthMode
from controller.allocation.scenario import random_instance
from controller.link import (
    LinkConfig,
    LinkOutcome,
    LinkPlan,
    attempt_times,
    deadline_from_plan,
    plan_links,
    transmit,
)
from controller.policy.policy import PolicyAction, PowerPolicy, PowerPolicyConfig
from controller.round import LinkResult, link_config, link_features, round_reward
from protocol.arrays import NDArrayFloat
from protocol.spec import LinkSpec

__all__ = [
    "SimRound",
    "Strategy",
    "TrainConfig",
    "TrainReport",
    "evaluate_strategy",
    "fading_gains",
    "policy_strategy",
    "simulate_rounds",
    "train_power_policy",
]

#: Stream tags of the simulated world: training and evaluation rounds; per user, its fading
#: and its HARQ decoding draws.
_TAG_TRAIN, _TAG_EVAL = 0x7452, 0x4576
_TAG_FADING, _TAG_HARQ = 1, 2


@dataclass(frozen=True)
class TrainConfig:
    """Offline training in simulation, through the link layer."""

    iterations: int = 200
    """Actor-critic updates."""
    batch: int = 8
    """Simulated rounds (sampled actions) per update, in episodes of ``episode_rounds``."""
    episode_rounds: int = 2
    """Rounds per episode on one instance; the last episode of a batch may be cut short."""
    users: tuple[int, int] = (4, 16)
    """Range of users per simulated round (inclusive), when ``fixed_scenario`` is False."""
    fixed_scenario: bool = False
    """Train on one seeded instance (the smoke/learning test) instead of fresh ones."""
    weights: ObjectiveWeights = field(default_factory=lambda: ObjectiveWeights(beta=0.5))
    """Objective weights of the simulated rounds."""
    gain_db: tuple[float, float] = (-130.0, -100.0)
    """Range of the users' estimated channel gains ``10 log10 G^``, dB."""
    update_bits: float | None = None
    """Bits per model update (default: drawn per instance, 1-8 Mbit)."""
    bandwidth: BandwidthMode = "softmax"
    """How fusion re-solves the bandwidth."""
    link: LinkSpec = field(default_factory=LinkSpec)
    """The link layer (MCS table, back-off, HARQ, deadline), as in an experiment's spec."""
    antennas: int = 4
    """``N``: branches of the true channel's power fading, ``Gamma(N, 1/N)``."""
    coherence_s: float = 0.04
    """Coherence time of the true channel (block fading), s."""
    eval_episodes: int = 8
    """Evaluation episodes (fresh instances, or the fixed one with fresh fading)."""
    seed: int = 0
    """Seed of the scenarios, the channel, HARQ, the network and the exploration noise."""
    threads: int = 1
    """torch threads (the controller host shares its cores)."""

    def __post_init__(self) -> None:
        for name in ("iterations", "batch", "episode_rounds", "antennas", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)!r}.")
        if not 1 <= self.users[0] <= self.users[1]:
            raise ValueError(f"`users` must be a range 1 <= lo <= hi, got {self.users!r}.")
        if not (math.isfinite(self.coherence_s) and self.coherence_s > 0):
            raise ValueError(f"`coherence_s` must be finite and > 0, got {self.coherence_s!r}.")
        if not self.link.enabled:
            raise ValueError("`link.enabled` must be True: training scores through the link layer.")


@dataclass
class TrainReport:
    """What training measured, all modelled; rewards are per user per round."""

    rewards: list[float]
    """Mean sampled reward of each iteration (the learning curve)."""
    final_reward: float
    """Mean reward of the trained (deterministic) policy on the evaluation rounds."""
    full_power_reward: float
    """Same rounds (same channel and HARQ draws) with every user at ``P_max``."""
    random_power_reward: float
    """Same rounds with uniformly random powers in ``(0, P_max]``."""
    link_dropout_rate: float
    """Share of the trained policy's updates on the evaluation rounds that did not arrive."""
    full_power_dropout_rate: float
    """The same share at full power."""
    random_power_dropout_rate: float
    """The same share at random power."""
    seconds: float

    def curve(self, points: int = 10) -> list[float]:
        """The learning curve in ``points`` equal chunks, each the mean of its iterations."""
        chunks = np.array_split(np.asarray(self.rewards), min(points, len(self.rewards)))
        return [float(c.mean()) for c in chunks if c.size]

    def to_dict(self) -> dict[str, object]:
        return {
            "iterations": len(self.rewards),
            "first_reward": self.rewards[0] if self.rewards else None,
            "last_reward": self.rewards[-1] if self.rewards else None,
            "reward_curve": self.curve(),
            "final_reward": self.final_reward,
            "full_power_reward": self.full_power_reward,
            "random_power_reward": self.random_power_reward,
            "link_dropout_rate": self.link_dropout_rate,
            "full_power_dropout_rate": self.full_power_dropout_rate,
            "random_power_dropout_rate": self.random_power_dropout_rate,
            "seconds": self.seconds,
        }


# -- the simulated round ----------------------------------------------------------------------


@dataclass(frozen=True)
class SimRound:
    """One round through the link layer, ``U`` users (all modelled).

    Attributes:
        reward: ``R_t / U`` with no accuracy term.
        allocation: the fused ``(P, B, f)``.
        plan: the link plan from the estimated gains.
        deadline_s: the round's deadline, s after its start.
        outcome: what HARQ delivered over the true channel.
        link_state: ``[U, 3]`` the outcome as the policy sees it next round
            (:func:`controller.round.link_features`).
    """

    reward: float
    allocation: Allocation
    plan: LinkPlan
    deadline_s: float
    outcome: LinkOutcome
    link_state: NDArrayFloat

    @property
    def dropouts(self) -> int:
        """Updates that did not arrive (late, failed, outage)."""
        return int(np.sum(~self.outcome.arrived))


def fading_gains(
    gain: NDArrayFloat,
    times_s: NDArrayFloat,
    keys: Sequence[Sequence[int]],
    *,
    antennas: int,
    coherence_s: float,
) -> NDArrayFloat:
    """The true channel at each attempt: the estimate times a block-fading power fade.

    Args:
        gain: ``[U]`` estimated gains ``G^_u``, dimensionless.
        times_s: ``[U, A]`` attempt times after the round's start, s (NaN: no attempt).
        keys: ``U`` integer keys; user ``u``'s fades come from a generator keyed by
            ``(*keys[u], tag)``, so its ``k``-th coherence block fades the same whatever ``A``.
        antennas: ``N`` of ``Gamma(N, 1/N)``.
        coherence_s: length of one fading block, s.

    Returns:
        ``[U, A]`` float64, ``G^_u X_{u, floor(t / coherence_s)}``; NaN where ``times_s`` is.
    """
    t = np.asarray(times_s, dtype=np.float64)
    block = np.floor(np.nan_to_num(t, nan=0.0) / coherence_s).astype(np.int64)
    width = int(block.max(initial=-1)) + 1
    fades = np.ones((len(keys), max(width, 1)))
    for u, k in enumerate(keys):
        fades[u, :width] = np.random.default_rng([*k, _TAG_FADING]).gamma(
            antennas, 1.0 / antennas, width
        )
    x = np.take_along_axis(fades, block, axis=1)
    return np.where(np.isnan(t), np.nan, np.asarray(gain, dtype=np.float64)[:, None] * x)


def _allocate(
    inst: AllocationInstance,
    power_w: NDArrayFloat,
    bandwidth_logits: NDArrayFloat | None,
    mode: BandwidthMode,
) -> Allocation:
    """Fusion of the powers (DRL-RA: the action's own bandwidth, no CSM)."""
    if bandwidth_logits is None:
        return fuse(inst, power_w, resolve=mode)
    b = softmax(bandwidth_logits, inst.bandwidth_hz)
    return fuse(inst, power_w, bandwidth_hz=b, resolve=None, csm=False)


def _plan(
    cfg: LinkConfig, link: LinkSpec, inst: AllocationInstance, alloc: Allocation
) -> tuple[LinkPlan, NDArrayFloat, float]:
    """The link plan, ``[U]`` compute times (s) and the deadline (s), as the round core plans.

    When every user is in outage the plan gives no deadline; the round then waits
    ``deadline_factor`` times the system model's round latency.
    """
    plan = plan_links(
        cfg,
        power_w=alloc.power_w,
        bandwidth_hz=alloc.bandwidth_hz,
        gain=inst.gain,
        noise_psd_w_per_hz=inst.noise_psd_w_per_hz,
        update_bits=inst.update_bits,
    )
    compute = inst.workload_cycles / alloc.freq_hz
    deadline = link.deadline_s or deadline_from_plan(plan, compute, factor=link.deadline_factor)
    if not math.isfinite(deadline):
        deadline = link.deadline_factor * alloc.round_latency_s
    return plan, compute, deadline


def _concat_plans(plans: Sequence[LinkPlan]) -> LinkPlan:
    fields = dataclasses.fields(LinkPlan)
    return LinkPlan(**{f.name: np.concatenate([getattr(p, f.name) for p in plans]) for f in fields})


def _slice_outcome(out: LinkOutcome, rows: slice, delay_s: float) -> LinkOutcome:
    parts = {f.name: getattr(out, f.name)[rows] for f in dataclasses.fields(LinkOutcome)}
    parts["arrival_s"] = parts["arrival_s"] - delay_s
    return LinkOutcome(**parts)


def _link_state(outcome: LinkOutcome, plan: LinkPlan) -> NDArrayFloat:
    """``[U, 3]`` the outcome in the columns of :func:`controller.round.link_features`."""
    u = outcome.status.size
    ids = tuple(str(i) for i in range(u))
    # only what link_features reads matters (status, outcome, planned SINR): one definition.
    result = LinkResult(
        ue_ids=ids,
        status=outcome.status,
        mcs_index=plan.mcs,
        model_arrival_s=outcome.arrival_s,
        model_latency_s=outcome.arrival_s,
        model_energy_j=outcome.comm_energy_j,
        retries=outcome.retries,
        outcome=outcome,
        planned_sinr_db=plan.planned_sinr_db,
    )
    rows = link_features(result)
    return np.stack([rows[i] for i in ids]) if u else np.zeros((0, 3))


def simulate_rounds(
    instances: Sequence[AllocationInstance],
    powers: Sequence[NDArrayFloat],
    keys: Sequence[Sequence[int]],
    config: TrainConfig,
    *,
    bandwidth_logits: Sequence[NDArrayFloat | None] | None = None,
) -> list[SimRound]:
    """Independent rounds through the link layer, one per instance.

    Args:
        instances: the rounds' allocation problems.
        powers: ``[U_i]`` the powers of each round, W (projected by fusion).
        keys: integer key of each round: its channel and HARQ draws depend on the key and the
            user only, so two actions on one key meet the same channel (common random numbers).
        config: link layer, fading and bandwidth mode.
        bandwidth_logits: per round, the action's own bandwidth logits (DRL-RA) or None.

    HARQ runs in one :func:`controller.link.transmit` call for all rounds (its loop runs over
    attempt slots, so a batch costs about as much as one round). ``transmit`` takes one deadline
    and one noise density: each round's clock is delayed by the latest deadline minus its own,
    which moves its attempts and its deadline alike (arrivals are shifted back afterwards), and
    the true gains are divided by the round's ``N0`` with the noise density set to 1 W/Hz,
    which leaves every SINR as it was.
    """
    cfg = link_config(config.link)
    logits = bandwidth_logits or [None] * len(instances)
    allocs = [
        _allocate(i, p, lg, config.bandwidth)
        for i, p, lg in zip(instances, powers, logits, strict=True)
    ]
    planned = [_plan(cfg, config.link, i, a) for i, a in zip(instances, allocs, strict=True)]
    latest = max(d for _, _, d in planned)
    delays = [latest - d for _, _, d in planned]
    sizes = [i.n_users for i in instances]
    plan = _concat_plans([p for p, _, _ in planned])
    compute = np.concatenate([c + s for (_, c, _), s in zip(planned, delays, strict=True)])
    shift = np.repeat(delays, sizes)
    times = attempt_times(plan, compute_s=compute, deadline_s=latest) - shift[:, None]
    user_keys = [(*k, u) for k, n in zip(keys, sizes, strict=True) for u in range(n)]
    gain_est = np.concatenate([i.gain / i.noise_psd_w_per_hz for i in instances])
    true_gain = fading_gains(
        gain_est, times, user_keys, antennas=config.antennas, coherence_s=config.coherence_s
    )
    width = times.shape[1]
    uniforms = np.stack([np.random.default_rng([*k, _TAG_HARQ]).random(width) for k in user_keys])
    out = transmit(
        cfg,
        plan,
        power_w=np.concatenate([a.power_w for a in allocs]),
        bandwidth_hz=np.concatenate([a.bandwidth_hz for a in allocs]),
        noise_psd_w_per_hz=1.0,
        compute_s=compute,
        deadline_s=latest,
        true_gain=np.nan_to_num(true_gain, nan=0.0),
        uniforms=uniforms,
    )
    rounds, start = [], 0
    for inst, alloc, (p, _, deadline), delay in zip(
        instances, allocs, planned, delays, strict=True
    ):
        o = _slice_outcome(out, slice(start, start + inst.n_users), delay)
        start += inst.n_users
        energy = o.comm_energy_j + inst.kappa * inst.workload_cycles * alloc.freq_hz**2
        latency = np.where(o.arrived, o.arrival_s, deadline)
        r = round_reward(inst.weights, accuracy=0.0, energy_j=energy, latency_s=latency)
        rounds.append(SimRound(r / inst.n_users, alloc, p, deadline, o, _link_state(o, p)))
    return rounds


# -- evaluation ---------------------------------------------------------------------------------

#: A power rule: (instance, last link state ``[U, 3]`` or None) -> powers ``[U]`` W and
#: optional bandwidth logits ``[U]``.
Strategy = Callable[
    [AllocationInstance, NDArrayFloat | None], tuple[NDArrayFloat, NDArrayFloat | None]
]


def policy_strategy(policy: PowerPolicy, *, explore: bool = False) -> Strategy:
    """The policy as a :data:`Strategy` (its mean action unless ``explore``)."""

    def choose(
        inst: AllocationInstance, state: NDArrayFloat | None
    ) -> tuple[NDArrayFloat, NDArrayFloat | None]:
        act = policy.act(inst, link_state=state, explore=explore)
        return act.power_w, act.bandwidth_logits

    return choose


def evaluate_strategy(
    strategy: Strategy,
    instances: Sequence[AllocationInstance],
    config: TrainConfig,
    *,
    rounds: int | None = None,
    key: int = 0,
) -> tuple[float, float]:
    """Mean per-user reward and link dropout rate of ``strategy`` on episodes of ``instances``.

    Each instance is one episode of ``rounds`` (default ``config.episode_rounds``) rounds, the
    strategy seeing the previous round's link state; episode ``e``'s round ``r`` draws its
    channel and HARQ from ``(config.seed, key, e, r)``, the same for every strategy.
    """
    n_rounds = rounds or config.episode_rounds
    states: list[NDArrayFloat | None] = [None] * len(instances)
    rewards, lost, sent = [], 0, 0
    for r in range(n_rounds):
        chosen = [strategy(i, s) for i, s in zip(instances, states, strict=True)]
        keys = [(config.seed, _TAG_EVAL, key, e, r) for e in range(len(instances))]
        sims = simulate_rounds(
            instances,
            [p for p, _ in chosen],
            keys,
            config,
            bandwidth_logits=[lg for _, lg in chosen],
        )
        states = [s.link_state for s in sims]
        rewards += [s.reward for s in sims]
        lost += sum(s.dropouts for s in sims)
        sent += sum(i.n_users for i in instances)
    return float(np.mean(rewards)), lost / sent


# -- training -----------------------------------------------------------------------------------


def train_power_policy(
    config: TrainConfig,
    policy: PowerPolicy | None = None,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[PowerPolicy, TrainReport]:
    """Train ``policy`` (default: a fresh one seeded from ``config.seed``) in simulation.

    Returns:
        The trained policy and a report comparing it with full and random power on the same
        evaluation rounds (same instances, channels and HARQ draws).
    """
    # -- seeding ------------------------------------------------------------------------------
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    policy = policy or PowerPolicy(PowerPolicyConfig(seed=config.seed))
    start = time.perf_counter()

    def draw() -> AllocationInstance:
        n = int(rng.integers(config.users[0], config.users[1] + 1))
        return random_instance(
            rng, n, weights=config.weights, gain_db=config.gain_db, update_bits=config.update_bits
        )

    fixed = draw() if config.fixed_scenario else None
    eval_rounds = [fixed if fixed is not None else draw() for _ in range(config.eval_episodes)]
    n_episodes = -(-config.batch // config.episode_rounds)
    lengths = [
        min(config.episode_rounds, config.batch - e * config.episode_rounds)
        for e in range(n_episodes)
    ]

    # -- the loop -----------------------------------------------------------------------------
    history: list[float] = []
    for it in range(config.iterations):
        episodes = [fixed if fixed is not None else draw() for _ in range(n_episodes)]
        states: list[NDArrayFloat | None] = [None] * n_episodes
        acts: list[PolicyAction] = []
        rewards: list[float] = []
        for r in range(config.episode_rounds):
            live = [e for e in range(n_episodes) if lengths[e] > r]
            step = [policy.act(episodes[e], link_state=states[e], explore=True) for e in live]
            sims = simulate_rounds(
                [episodes[e] for e in live],
                [a.power_w for a in step],
                [(config.seed, _TAG_TRAIN, it, e, r) for e in live],
                config,
                bandwidth_logits=[a.bandwidth_logits for a in step],
            )
            for e, act, sim in zip(live, step, sims, strict=True):
                states[e] = sim.link_state
                acts.append(act)
                rewards.append(sim.reward)
        stats = policy.update(acts, rewards)
        history.append(stats["mean_reward"])
        if progress is not None:
            progress(it, stats["mean_reward"])

    # -- evaluation ---------------------------------------------------------------------------
    eval_rng = np.random.default_rng([config.seed, _TAG_EVAL])

    def full(inst: AllocationInstance, _: NDArrayFloat | None) -> tuple[NDArrayFloat, None]:
        return inst.p_max_w.copy(), None

    def rand(inst: AllocationInstance, _: NDArrayFloat | None) -> tuple[NDArrayFloat, None]:
        return inst.p_max_w * eval_rng.uniform(1e-3, 1.0, inst.n_users), None

    final, final_drop = evaluate_strategy(policy_strategy(policy), eval_rounds, config)
    full_r, full_drop = evaluate_strategy(full, eval_rounds, config)
    rand_r, rand_drop = evaluate_strategy(rand, eval_rounds, config)
    report = TrainReport(
        rewards=history,
        final_reward=final,
        full_power_reward=full_r,
        random_power_reward=rand_r,
        link_dropout_rate=final_drop,
        full_power_dropout_rate=full_drop,
        random_power_dropout_rate=rand_drop,
        seconds=time.perf_counter() - start,
    )
    return policy, report
