"""The cross-layer edge environment of seed paper 1 (FERMI-6G; DESIGN section 9).

N agents (edge boards) in slotted time. Every slot each agent may receive a task of one of three
classes and keeps its tasks in a FIFO queue; it works on the task at the head of its queue with
one composite action: compute locally at one of the board's DVFS levels, or offload part of it
over one of K sub-bands to an edge server of shared capacity. A task is done when all of it has
been computed (locally, or at the edge after its upload); a task older than its deadline is
dropped. The dynamics are NumPy, vectorised over agents, and seeded; the API is PettingZoo's
``ParallelEnv`` (``reset(seed)``, ``step(actions)`` with per-agent dicts, ``possible_agents``,
``observation_space(agent)``, ``action_space(agent)``, a global ``state()``).

Model (the paper publishes few parameters; sources and our assumptions):

- **Slots** of :attr:`EnvConfig.slot_s` = 1 ms (an NR slot at 15 kHz numerology, 3GPP TS
  38.211); episodes of :attr:`EnvConfig.slots` slots.
- **Tasks** (:data:`TASK_CLASSES`): size in bits, computing density in cycles per bit,
  deadline in slots, Bernoulli arrival probability per slot. URLLC's 1-5 ms budget and small
  packets follow 3GPP TR 38.913 (section 7.9); the densities (hundreds of cycles per bit) are of
  the order used in the MEC literature (Mao et al., IEEE Commun. Surveys Tuts. 2017, and its
  references); the exact numbers are our assumption.
- **Local computing**: level ``l`` runs at ``f_l`` of the agent's board profile (DESIGN section
  5: ``rpi4``, ``jetson-nano``), ``f_l * slot_s`` cycles per slot at ``kappa f_l^2`` joules per
  cycle.
- **Offloading**: sub-band ``k`` carries ``(B/K) log2(1 + SNR_k)`` bit/s, ``SNR_k = p G_k /
  (N0 B/K)``, with the CF-mMIMO statistics of ``sim_backend``: ``G_k = sum over APs and antennas
  of beta |g|^2``, the path loss of :func:`sim_backend.fading.path_loss_db` with i.i.d. 4 dB
  shadowing, and Rayleigh fading per sub-band evolving from slot to slot as Gauss-Markov with
  the Jakes coefficient (:func:`sim_backend.fading.jakes_rho`). **Contention**: two or more
  agents on one sub-band in one slot collide and send nothing (slotted ALOHA's collision
  channel; the transmit energy is spent). The uploaded part of a task waits at the edge server,
  whose :attr:`EnvConfig.edge_hz` cycles per second are shared equally among the agents with
  work there.
- **Observation** of each agent (its own, partial: it sees nothing of the others but its
  sub-bands' outcomes): queue length, last slot's energy, per sub-band the channel quality
  (SNR dB / 30) and whether it saw a collision there last slot, the head task's class
  (one-hot) and deadline slack, the head task's remaining fraction and its edge backlog.
- **Reward** per agent per slot: +1 for a task completed in time, -1 for a task dropped,
  minus ``energy_weight`` times the slot's energy in mJ, minus ``latency_weight`` times the
  queue length (latency, by Little's law), plus ``se_weight`` times the spectral efficiency of
  a successful upload (bit/s/Hz). Our weights; fairness and reliability are measured per
  episode (:meth:`FedEdgeEnv.metrics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from protocol.profiles import BUILTIN_PROFILES
from sim_backend.fading import SHADOW_STD_DB, jakes_rho, path_loss_db
from sim_backend.geometry import distances_3d

__all__ = ["TASK_CLASSES", "EnvConfig", "FedEdgeEnv", "TaskClass"]

NDArrayFloat = npt.NDArray[np.float64]
NDArrayInt = npt.NDArray[np.int64]

_BOLTZMANN_DBM_HZ = -174.0


@dataclass(frozen=True)
class TaskClass:
    """One traffic class: ``bits`` per task, ``cycles_per_bit``, ``deadline_slots``, and the
    probability ``arrival_p`` that a task of it arrives at an agent in a slot."""

    name: str
    bits: float
    cycles_per_bit: float
    deadline_slots: int
    arrival_p: float


#: URLLC, eMBB and mMTC (our numbers; see the module docstring for their sources).
TASK_CLASSES: tuple[TaskClass, ...] = (
    TaskClass("urllc", bits=2_000.0, cycles_per_bit=500.0, deadline_slots=5, arrival_p=0.10),
    TaskClass("embb", bits=40_000.0, cycles_per_bit=300.0, deadline_slots=40, arrival_p=0.03),
    TaskClass("mmtc", bits=1_000.0, cycles_per_bit=200.0, deadline_slots=100, arrival_p=0.05),
)


@dataclass(frozen=True)
class EnvConfig:
    """The environment's parameters (units in the names)."""

    agents: int = 10
    subbands: int = 4
    slots: int = 200
    slot_s: float = 1e-3
    queue: int = 8
    bandwidth_hz: float = 20e6
    edge_hz: float = 20e9
    aps: int = 4
    antennas: int = 2
    area_m: float = 500.0
    ap_height_m: float = 10.0
    carrier_hz: float = 3.5e9
    speed_mps: float = 1.0
    noise_figure_db: float = 7.0
    profiles: tuple[str, ...] = ("rpi4", "jetson-nano")
    classes: tuple[TaskClass, ...] = TASK_CLASSES
    energy_weight: float = 0.05
    latency_weight: float = 0.01
    se_weight: float = 0.02

    def __post_init__(self) -> None:
        for name in ("agents", "subbands", "slots", "queue", "aps", "antennas"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)}")
        for name in ("slot_s", "bandwidth_hz", "edge_hz", "area_m", "carrier_hz"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be positive, got {getattr(self, name)}")
        for p in self.profiles:
            if p not in BUILTIN_PROFILES:
                raise ValueError(
                    f"`profiles`: unknown profile {p!r}; known: {sorted(BUILTIN_PROFILES)}"
                )
        if not self.classes:
            raise ValueError("`classes` must name at least one task class")


def _thin(levels: list[float], count: int) -> NDArrayFloat:
    """``count`` of ``levels`` spread evenly, the lowest and the highest kept."""
    pick = np.linspace(0, len(levels) - 1, count).round().astype(int)
    return np.asarray(levels, dtype=np.float64)[pick]


class FedEdgeEnv:
    """The environment (PettingZoo ``ParallelEnv`` contract); agents are ``agent_0`` ...

    Arrays hold one row per agent: ``[N]`` or ``[N, Q]`` for the queues (``Q`` =
    :attr:`EnvConfig.queue`, head at column 0, ``-1`` class marks an empty place).
    """

    metadata: ClassVar[dict[str, Any]] = {"name": "fed_edge_v0", "render_modes": []}

    def __init__(self, config: EnvConfig | None = None) -> None:
        self.config = c = config or EnvConfig()
        self.possible_agents = [f"agent_{i}" for i in range(c.agents)]
        self.agents: list[str] = []
        profiles = [BUILTIN_PROFILES[c.profiles[i % len(c.profiles)]] for i in range(c.agents)]
        self.levels = min(len(p.f_levels_hz) for p in profiles)
        # Each board's DVFS levels thinned to the common count (lowest and highest kept), Hz.
        self.freq_hz = np.array([_thin(p.f_levels_hz, self.levels) for p in profiles])
        self.kappa = np.array([p.kappa for p in profiles])
        self.power_w = np.array([p.p_max_w for p in profiles])
        self.n_actions = self.levels + c.subbands
        self._bits = np.array([k.bits for k in c.classes])
        self._cpb = np.array([k.cycles_per_bit for k in c.classes])
        self._deadline = np.array([k.deadline_slots for k in c.classes])
        self._arrival = np.array([k.arrival_p for k in c.classes])
        band = c.bandwidth_hz / c.subbands
        self._noise_w = 10 ** ((_BOLTZMANN_DBM_HZ + c.noise_figure_db - 30) / 10) * band
        self._band_hz = band
        self._rho = float(
            jakes_rho(np.array([c.speed_mps]), fc_hz=c.carrier_hz, period_s=c.slot_s)[0]
        )
        self._spaces: tuple[Any, Any] | None = None
        self.reset(seed=0)
        self.agents = []

    # -- the ParallelEnv contract -------------------------------------------------------------
    @property
    def unwrapped(self) -> FedEdgeEnv:
        return self

    def close(self) -> None:
        """Nothing to release (no renderer, no files)."""

    def render(self) -> None:
        """No rendering (``render_modes`` is empty)."""

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def max_num_agents(self) -> int:
        return len(self.possible_agents)

    @property
    def obs_size(self) -> int:
        """Features per observation: queue, energy, 2 per sub-band, class one-hot, slack,
        remaining fraction, edge backlog."""
        return 2 + 2 * self.config.subbands + len(self.config.classes) + 3

    def observation_space(self, agent: str) -> Any:
        return self._gym_spaces()[0]

    def action_space(self, agent: str) -> Any:
        return self._gym_spaces()[1]

    def _gym_spaces(self) -> tuple[Any, Any]:
        if self._spaces is None:
            from gymnasium import spaces

            self._spaces = (
                spaces.Box(-np.inf, np.inf, shape=(self.obs_size,), dtype=np.float32),
                spaces.Discrete(self.n_actions),
            )
        return self._spaces

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, npt.NDArray[np.float32]], dict[str, dict[str, Any]]]:
        """Start an episode (a new world: positions, shadowing, fading); ``seed`` fixes it."""
        c = self.config
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        elif not hasattr(self, "_rng"):
            self._rng = np.random.default_rng()
        rng, n, k = self._rng, c.agents, c.subbands
        ue = rng.uniform(0, c.area_m, size=(n, 2))
        ap = rng.uniform(0, c.area_m, size=(c.aps, 2))
        d = distances_3d(ue, ap, area_m=c.area_m, height_m=c.ap_height_m, wrap=True)
        beta_db = path_loss_db(d) + SHADOW_STD_DB * rng.standard_normal(d.shape)
        self.beta = 10 ** (beta_db / 10)  # [N, L]
        shape = (n, k, c.aps, c.antennas)
        self._g = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2)
        self._snr: NDArrayFloat | None = None
        self.t = 0
        self.q_class = np.full((n, c.queue), -1, dtype=np.int64)
        self.q_age = np.zeros((n, c.queue), dtype=np.int64)
        self.q_left = np.zeros((n, c.queue))  # remaining fraction of each queued task
        self.edge_cycles = np.zeros(n)  # the head task's uploaded part still at the edge
        self.energy_j = np.zeros(n)
        self.last_energy_j = np.zeros(n)
        self.collided = np.zeros((n, k), dtype=bool)
        self.counts = {
            key: np.zeros((n, len(c.classes)), dtype=np.int64)
            for key in ("arrived", "completed", "dropped", "rejected")
        }
        self.completed_bits = np.zeros(n)
        self.latency_slots = np.zeros(n)
        self.agents = list(self.possible_agents)
        self._arrive()
        obs = self._observe()
        return obs, {a: {} for a in self.agents}

    def step(
        self, actions: dict[str, int]
    ) -> tuple[
        dict[str, npt.NDArray[np.float32]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """One slot: every agent's action on its head task, then deadlines, then arrivals.

        Args:
            actions: per agent an int in ``[0, levels + subbands)``: ``a < levels`` computes
                locally at level ``a``; else offloads on sub-band ``a - levels``. A missing
                agent idles.

        Raises:
            ValueError: an action outside the range or an unknown agent (named).
        """
        c = self.config
        n = c.agents
        act = np.full(n, -1, dtype=np.int64)
        for name, a in actions.items():
            if name not in self.possible_agents:
                raise ValueError(f"`actions`: unknown agent {name!r}")
            a = int(a)
            if not 0 <= a < self.n_actions:
                raise ValueError(f"`actions[{name!r}]` must be in [0, {self.n_actions}), got {a}")
            act[self.possible_agents.index(name)] = a
        reward, se = self._apply(act)
        drops = self._expire()
        self.t += 1
        self._arrive()
        self._fade()
        reward += se * c.se_weight - drops - c.latency_weight * self.queue_length()
        done = self.t >= c.slots
        obs = self._observe()
        rewards = {a: float(reward[i]) for i, a in enumerate(self.possible_agents)}
        terms = dict.fromkeys(self.possible_agents, False)
        truncs = dict.fromkeys(self.possible_agents, done)
        infos: dict[str, dict[str, Any]] = {a: {} for a in self.possible_agents}
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def state(self) -> npt.NDArray[np.float32]:
        """The global state (centralised baselines): every agent's observation, concatenated,
        ``[N * obs_size]``."""
        return self._obs_matrix().reshape(-1)

    # -- dynamics -----------------------------------------------------------------------------
    def queue_length(self) -> NDArrayInt:
        """``[N]`` tasks queued (the head included)."""
        return (self.q_class >= 0).sum(axis=1)

    def snr(self) -> NDArrayFloat:
        """``[N, K]`` the uplink SNR of each agent on each sub-band this slot (linear); computed
        once per slot (the fading changes only in :meth:`_fade` and :meth:`reset`)."""
        if self._snr is None:
            gain = np.einsum("nl,nkla->nk", self.beta, np.abs(self._g) ** 2)
            self._snr = self.power_w[:, None] * gain / self._noise_w
        return self._snr

    def _apply(self, act: NDArrayInt) -> tuple[NDArrayFloat, NDArrayFloat]:
        """Work on the head tasks; returns the completion reward minus energy cost and the
        spectral efficiency of each successful upload, ``[N]`` each."""
        c = self.config
        n = c.agents
        idx = np.arange(n)
        head = self.q_class[:, 0]
        busy = head >= 0
        cls = np.where(busy, head, 0)
        bits, cpb = self._bits[cls], self._cpb[cls]
        energy = np.zeros(n)
        se = np.zeros(n)
        local = busy & (act >= 0) & (act < self.levels)
        level = np.clip(act, 0, self.levels - 1)
        f = self.freq_hz[idx, level]
        cycles_left = self.q_left[:, 0] * bits * cpb
        done_cycles = np.where(local, np.minimum(f * c.slot_s, cycles_left), 0.0)
        energy += self.kappa * done_cycles * f**2
        self.q_left[:, 0] -= np.where(local, done_cycles / (bits * cpb), 0.0)
        offload = busy & (act >= self.levels)
        band = np.where(offload, act - self.levels, -1)
        users = np.bincount(band[offload], minlength=c.subbands)
        self.collided = np.zeros((n, c.subbands), dtype=bool)
        clash = offload & (users[np.clip(band, 0, None)] > 1)
        self.collided[idx[clash], band[clash]] = True
        energy += np.where(offload, self.power_w * c.slot_s, 0.0)
        ok = offload & ~clash
        rate_se = np.log2(1.0 + self.snr()[idx, np.clip(band, 0, None)])
        sent_bits = np.where(
            ok, np.minimum(self._band_hz * rate_se * c.slot_s, self.q_left[:, 0] * bits), 0.0
        )
        se = np.where(ok, rate_se, 0.0)
        self.q_left[:, 0] -= np.where(ok, sent_bits / bits, 0.0)
        self.edge_cycles += sent_bits * cpb
        # The edge server shares its cycles equally among the agents with work there.
        at_edge = self.edge_cycles > 0
        share = c.edge_hz * c.slot_s / max(1, int(at_edge.sum()))
        self.edge_cycles = np.maximum(0.0, self.edge_cycles - np.where(at_edge, share, 0.0))
        self.q_left[:, 0] = np.maximum(self.q_left[:, 0], 0.0)
        finished = busy & (self.q_left[:, 0] <= 1e-12) & (self.edge_cycles <= 0.0)
        self.counts["completed"][idx[finished], cls[finished]] += 1
        self.completed_bits += np.where(finished, bits, 0.0)
        self.latency_slots += np.where(finished, self.q_age[:, 0] + 1, 0)
        self._remove(finished[:, None] & (np.arange(c.queue)[None, :] == 0))
        self.last_energy_j = energy
        self.energy_j += energy
        return finished.astype(np.float64) - c.energy_weight * energy * 1e3, se

    def _remove(self, gone: npt.NDArray[np.bool_]) -> None:
        """Drop the queued tasks marked in ``gone`` (``[N, Q]``), keeping the others in order.
        A removed head takes its edge backlog with it."""
        if not gone.any():
            return
        self.edge_cycles = np.where(gone[:, 0], 0.0, self.edge_cycles)
        keep = (self.q_class >= 0) & ~gone
        order = np.argsort(~keep, axis=1, kind="stable")  # kept ones first, in order
        rows = np.arange(self.config.agents)[:, None]
        self.q_class = np.where(np.take_along_axis(keep, order, 1), self.q_class[rows, order], -1)
        self.q_age = np.where(self.q_class >= 0, self.q_age[rows, order], 0)
        self.q_left = np.where(self.q_class >= 0, self.q_left[rows, order], 0.0)

    def _expire(self) -> NDArrayFloat:
        """Age the queue by a slot and drop the tasks past their deadline; ``[N]`` drops."""
        queued = self.q_class >= 0
        self.q_age = np.where(queued, self.q_age + 1, 0)
        limit = self._deadline[np.clip(self.q_class, 0, None)]
        late = queued & (self.q_age >= limit)
        rows, cols = np.nonzero(late)
        np.add.at(self.counts["dropped"], (rows, self.q_class[rows, cols]), 1)
        self._remove(late)
        return late.sum(axis=1).astype(np.float64)

    def _arrive(self) -> None:
        """At most one new task per agent and slot, its class drawn by the arrival rates."""
        c = self.config
        u = self._rng.random(c.agents)
        cum = np.cumsum(self._arrival)
        cls = np.searchsorted(cum, u, side="right")
        new = cls < len(c.classes)
        length = self.queue_length()
        room = length < c.queue
        rows = np.nonzero(new)[0]
        np.add.at(self.counts["arrived"], (rows, cls[rows]), 1)
        full = np.nonzero(new & ~room)[0]
        np.add.at(self.counts["rejected"], (full, cls[full]), 1)
        put = np.nonzero(new & room)[0]
        self.q_class[put, length[put]] = cls[put]
        self.q_age[put, length[put]] = 0
        self.q_left[put, length[put]] = 1.0

    def _fade(self) -> None:
        w = self._rng.standard_normal(self._g.shape) + 1j * self._rng.standard_normal(self._g.shape)
        self._g = self._rho * self._g + math.sqrt(1 - self._rho**2) * w / math.sqrt(2)
        self._snr = None

    # -- observations and metrics ---------------------------------------------------------------
    def _obs_matrix(self) -> npt.NDArray[np.float32]:
        c = self.config
        head = self.q_class[:, 0]
        busy = head >= 0
        onehot = np.zeros((c.agents, len(c.classes)))
        onehot[np.nonzero(busy)[0], head[busy]] = 1.0
        deadline = self._deadline[np.clip(head, 0, None)]
        slack = np.where(busy, (deadline - self.q_age[:, 0]) / deadline, 0.0)
        snr_db = 10 * np.log10(self.snr() + 1e-12) / 30.0
        bits = self._bits[np.clip(head, 0, None)] * self._cpb[np.clip(head, 0, None)]
        backlog = np.where(busy, self.edge_cycles / bits, 0.0)
        cols = [
            self.queue_length()[:, None] / c.queue,
            self.last_energy_j[:, None] * 1e3,
            snr_db,
            self.collided.astype(np.float64),
            onehot,
            slack[:, None],
            self.q_left[:, :1],
            backlog[:, None],
        ]
        return np.concatenate(cols, axis=1).astype(np.float32)

    def _observe(self) -> dict[str, npt.NDArray[np.float32]]:
        m = self._obs_matrix()
        return {a: m[i] for i, a in enumerate(self.possible_agents)}

    def in_flight(self) -> NDArrayInt:
        """``[N, C]`` tasks in the queues by class (conservation: arrived = completed +
        dropped + rejected + in flight)."""
        out = np.zeros((self.config.agents, len(self.config.classes)), dtype=np.int64)
        rows, cols = np.nonzero(self.q_class >= 0)
        np.add.at(out, (rows, self.q_class[rows, cols]), 1)
        return out

    def metrics(self) -> dict[str, float]:
        """The episode so far: ``success_rate`` (tasks completed before their deadline over
        tasks arrived), ``bits_per_joule`` (bits of completed tasks over all energy spent,
        local computing and uplink), ``mean_latency_slots`` of the completed tasks, ``jain``
        (Jain's index of the agents' success rates) and ``reliability`` (URLLC success rate)."""
        arrived = self.counts["arrived"].sum(axis=1)
        completed = self.counts["completed"].sum(axis=1)
        per_agent = np.where(arrived > 0, completed / np.maximum(arrived, 1), 1.0)
        jain = (
            float(per_agent.sum() ** 2 / (len(per_agent) * (per_agent**2).sum()))
            if per_agent.any()
            else 0.0
        )
        urllc_arr = self.counts["arrived"][:, 0].sum()
        energy = float(self.energy_j.sum())
        done = int(completed.sum())
        return {
            "success_rate": done / max(1, int(arrived.sum())),
            "bits_per_joule": float(self.completed_bits.sum()) / energy if energy > 0 else 0.0,
            "mean_latency_slots": float(self.latency_slots.sum()) / done if done else math.nan,
            "jain": jain,
            "reliability": float(self.counts["completed"][:, 0].sum()) / max(1, int(urllc_arr)),
        }
