"""Link study: how many planned updates the radio loses, per algorithm and SNR (DESIGN 12).

A seeded, in-process run of the round core's plan and link steps (no training, no network) on
the simulated world. Round ``r`` is planned at the anchor frame ``(r + 1) * round_frames``
(``round_period_s`` of stream per round; round 0 has a full second of CSI before it) from the
*estimated* gain the networked controller uses: each AP publishes one CSI message per 50 ms, and
the plan averages the last second (20 messages) of MMSE estimates ``sum_l ||h^_{u,l}||^2``
(``controller.csi_source``), drawn here by :class:`~sim_backend.CSIOnlySimulator` with the
statistics of the IQ path. Each update is then sent through the world's *true* channel at the
frames of its attempts (``sim_backend.true_gains``). Every client trains at the frequency the
plan set and reports; the DRL power policy of ``proposed`` learns online from each round's
reward, with the last round's link outcome as its state, as in the networked driver.

For one spec the study sweeps ``radio.snr_override_db`` (None: the geometry's own path loss)
and reports, per (algorithm, SNR), the link dropout rate over all planned updates, the mean
planned MCS index, HARQ retries per update and the modelled round latency and energy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from controller import round as core
from controller.algorithms import make_algorithm
from controller.link import OUTAGE
from protocol.arrays import NDArrayFloat, NDArrayInt
from protocol.spec import ExperimentSpec, parse_spec
from sim_backend import CSIOnlySimulator, World, true_gains
from sim_backend.geometry import distances_3d

__all__ = [
    "ALGORITHMS",
    "CSI_PERIOD_S",
    "CSI_WINDOW",
    "DEFAULT_SNRS_DB",
    "MNIST_CNN_PARAMETERS",
    "cell_edge_spec",
    "estimated_gains",
    "link_study",
]

#: The algorithms compared: the proposed framework and plain FedAvg (equal band, full power).
ALGORITHMS = ("proposed", "fedavg")
#: ``radio.snr_override_db`` sweep, dB (None: the geometry's own path loss). The override sets
#: every per-antenna pilot SNR ``p beta / sigma^2``; with 4 APs x 2 antennas, ``P_max / p = 2``
#: and an equal share of the band (B / 8) the true data SINR is about 21 dB above it (the
#: planned one lower: the MMSE estimate shrinks towards 0 at low pilot SNR). FedAvg's dropout
#: rate goes from 1 to 0 between -15 and -8 dB.
DEFAULT_SNRS_DB: tuple[float | None, ...] = (
    None,
    -20.0,
    -15.0,
    -12.0,
    -10.0,
    -8.0,
    -5.0,
    0.0,
    10.0,
)
#: Parameters of ``edge_agent.models.build_model("mnist_cnn")`` (float32: 32 bit each).
MNIST_CNN_PARAMETERS = 80_202
#: Interval between two CSI messages of one AP, s (``ap_cluster`` publishes every 50 ms).
CSI_PERIOD_S = 0.05
#: CSI messages per AP the planning gain averages (``controller.csi_source``: the last second).
CSI_WINDOW = 20

#: Cell-edge UE positions, m: 300, 340, ..., 600 m from the nearest of the corner APs.
_EDGE_UES_M = (
    (262.0, 262.0),
    (710.0, 290.0),
    (319.0, 681.0),
    (653.0, 653.0),
    (450.0, 277.0),
    (650.0, 450.0),
    (439.0, 561.0),
    (526.0, 526.0),
)
_CORNER_APS_M = ((50.0, 50.0), (950.0, 50.0), (50.0, 950.0), (950.0, 950.0))


def cell_edge_spec(*, seed: int = 0, deadline_s: float = 2.0) -> ExperimentSpec:
    """The built-in scenario: 8 UEs (rpi4 and jetson-nano) deep in the gap between 4 APs.

    A 1000 m square without wrap-around, one 2-antenna AP near each corner, the UEs 300-600 m
    from their nearest AP, walking at 1 m/s; 500 MNIST samples per client, a fixed modelled
    round deadline ``deadline_s`` (s) and the spec's default link layer (NR 64QAM table,
    3 dB back-off, 3 HARQ retries with chase combining).
    """
    ues = [
        {
            "id": f"ue{i}",
            "profile": "rpi4" if i % 2 == 0 else "jetson-nano",
            "position_m": list(xy),
            "speed_mps": 1.0,
        }
        for i, xy in enumerate(_EDGE_UES_M)
    ]
    aps = [
        {"id": f"ap{i}", "antennas": 2, "position_m": list(xy)}
        for i, xy in enumerate(_CORNER_APS_M)
    ]
    return parse_spec(
        {
            "name": "link-cell-edge",
            "seed": seed,
            "topology": {"area_m": 1000.0, "wrap_around": False, "aps": aps, "ues": ues},
            "dataset": {"samples_per_client": 500},
            "link": {"deadline_s": deadline_s},
            "secure_aggregation": {"enabled": False},
        },
        source="link-cell-edge",
    )


def _with(spec: ExperimentSpec, *, snr_db: float | None, algorithm: str) -> ExperimentSpec:
    """``spec`` with ``radio.snr_override_db`` and ``algorithm.name`` replaced (validated)."""
    data = spec.model_dump(by_alias=True, exclude_none=False)
    data["radio"]["snr_override_db"] = snr_db
    data["algorithm"]["name"] = algorithm
    return parse_spec(data, source=f"{spec.name} (snr {snr_db}, {algorithm})")


def estimated_gains(
    sim: CSIOnlySimulator, anchor: int, *, stride: int, window: int = CSI_WINDOW
) -> NDArrayFloat:
    """``[U]`` planning gains: the mean over the ``window`` CSI frames up to ``anchor``.

    The frames are ``anchor, anchor - stride, ...`` (those >= 0), each AP's MMSE estimate
    ``sum_l ||h^_{u,l}||^2`` (dimensionless; in the simulator the noise variance is the
    thermal noise of the band, so this is ``controller.csi.averaged_gain``).
    """
    frames = [f for f in range(anchor, anchor - window * stride, -stride) if f >= 0]
    total = np.zeros(sim.world.cfg.n_ues)
    for f in sorted(frames):
        est = sim.frames(f, 1).mmse[0]  # [L, U, N]
        total += np.sum(est.real**2 + est.imag**2, axis=(0, 2))
    return total / len(frames)


@dataclass
class _Tally:
    """Link outcomes summed over the rounds of one (algorithm, SNR)."""

    rounds: int = 0
    status: list[int] = field(default_factory=lambda: [0] * len(core.LINK_STATUS))
    mcs: list[int] = field(default_factory=list)
    retries: int = 0
    latency_s: float = 0.0
    energy_j: float = 0.0

    def add(self, link: core.LinkResult, rec: core.RoundRecord) -> None:
        self.rounds += 1
        for s in link.status:
            self.status[int(s)] += 1
        sent = link.status != OUTAGE
        self.mcs += link.mcs_index[sent].tolist()
        self.retries += int(np.sum(link.retries[sent]))
        self.latency_s += rec.model_latency_s
        self.energy_j += rec.model_energy_j

    def row(self, algorithm: str, snr_db: float | None) -> dict[str, Any]:
        """The JSON row (keys: :func:`link_study`)."""
        updates = sum(self.status)
        lost = updates - self.status[0]
        return {
            "algorithm": algorithm,
            "snr_db": snr_db,
            "link_dropout_rate": lost / max(updates, 1),
            "link_dropouts": lost,
            **dict(zip(core.LINK_STATUS[1:], self.status[1:], strict=True)),
            "mean_mcs_index": float(np.mean(self.mcs)) if self.mcs else None,
            "mean_retries": self.retries / len(self.mcs) if self.mcs else None,
            "model_latency_s": self.latency_s / max(self.rounds, 1),
            "model_energy_j": self.energy_j / max(self.rounds, 1),
            "rounds": self.rounds,
            "ues": updates // max(self.rounds, 1),
        }


def _reports(p: core.RoundPlan, samples: int) -> dict[str, core.ClientReport]:
    """Every client trained at the planned frequency (loss 1, modelled training time)."""
    f = p.allocation.freq_hz
    t = p.instance.workload_cycles / f
    return {
        u: core.ClientReport(u, 1.0, samples, float(t[i]), float(f[i]))
        for i, u in enumerate(p.ue_ids)
    }


def _run(
    spec: ExperimentSpec,
    world: World,
    planning: Sequence[tuple[int, NDArrayFloat]],
    *,
    update_bits: float,
    progress: Callable[[], None] | None,
) -> _Tally:
    """One round of ``spec.algorithm`` per ``(anchor frame, [U] estimated gains)``."""
    alg = make_algorithm(spec.algorithm, spec.weights, seed=spec.seed)
    ue_ids = [ue.id for ue in spec.topology.ues]
    samples = spec.dataset.samples_per_client or spec.dataset.min_samples_per_client
    index_of = {u: i for i, u in enumerate(world.cfg.ue_ids)}
    tally, history, model_time = _Tally(), None, 0.0
    for r, (anchor, gains) in enumerate(planning):
        p = core.plan(
            alg,
            spec,
            index=r,
            ue_ids=ue_ids,
            gains=gains,
            samples=dict.fromkeys(ue_ids, samples),
            update_bits=update_bits,
            anchor_frame=anchor,
            history=history,
        )
        reports = _reports(p, samples)
        request = core.link_request(p, reports)
        truth = None
        if request is not None:
            ues: NDArrayInt = np.array([index_of[u] for u in p.ue_ids], dtype=np.int64)
            truth = true_gains(world, ues, request.frames)
        link = core.resolve_link(spec, p, reports, request, truth)
        rec = core.record(
            spec,
            p,
            reports,
            link,
            link.arrived,
            accuracy=None,
            loss=None,
            fairness_var=None,
            previous_model_time_s=model_time,
            updated=bool(link.arrived),
        )
        alg.observe(rec.reward)
        history, model_time = core.link_features(link), rec.model_time_s
        tally.add(link, rec)
        if progress is not None:
            progress()
    return tally


def link_study(
    spec: ExperimentSpec | None = None,
    *,
    algorithms: Sequence[str] = ALGORITHMS,
    snrs_db: Sequence[float | None] = DEFAULT_SNRS_DB,
    rounds: int = 20,
    round_period_s: float = 2.0,
    update_bits: float = 32.0 * MNIST_CNN_PARAMETERS,
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """``{"scenario": {...}, "rows": [...]}``, one row per (SNR, algorithm), all modelled.

    Row keys: ``algorithm``; ``snr_db`` (None: the geometry's own); ``link_dropout_rate``, the
    fraction of planned updates the radio lost (``link_dropouts`` of ``rounds x ues``, split
    into ``late``, ``failed`` and ``outage``); ``mean_mcs_index`` (planned MCS index) and
    ``mean_retries`` (HARQ retransmissions) per update sent, i.e. not in outage (None if
    none was); ``model_latency_s``, the mean round latency of ``core.record`` (last arrival, or
    the deadline when an update was late; 0 when nothing was sent), s; ``model_energy_j``, the
    mean per round of the clients' summed energy (transmission and training), J.

    Args:
        spec: the experiment (default :func:`cell_edge_spec`); its seed keys the world, the
            estimation noise, the HARQ draws and the power policy.
        algorithms: ``algorithm.name`` values to compare, each over the same seeded rounds.
        snrs_db: ``radio.snr_override_db`` values, dB (None: the geometry's own).
        rounds: rounds per (algorithm, SNR), >= 1.
        round_period_s: stream time between two rounds' anchor frames, s.
        update_bits: size of one model update, bit (default: the float32 MNIST CNN).
        progress: called after every round (a progress bar).
    """
    if rounds < 1:
        raise ValueError(f"`rounds` must be >= 1, got {rounds}.")
    if not (np.isfinite(round_period_s) and round_period_s > 0):
        raise ValueError(f"`round_period_s` must be finite and > 0, got {round_period_s}.")
    spec = spec or cell_edge_spec()
    frame_s = spec.radio.tau_c / spec.radio.sample_rate_hz
    stride = max(1, round(CSI_PERIOD_S / frame_s))
    round_frames = max(stride, round(round_period_s / frame_s / stride) * stride)
    rows = []
    for snr in snrs_db:
        world = World(_with(spec, snr_db=snr, algorithm=spec.algorithm.name))
        sim = CSIOnlySimulator(world)
        anchors = [(r + 1) * round_frames for r in range(rounds)]  # a full CSI window before
        # The same world and estimation noise for every algorithm: estimate once.
        planning = [(a, estimated_gains(sim, a, stride=stride)) for a in anchors]
        for name in algorithms:
            run_spec = _with(spec, snr_db=snr, algorithm=name)
            tally = _run(run_spec, world, planning, update_bits=update_bits, progress=progress)
            rows.append(tally.row(name, snr))
    return {"scenario": _scenario(spec, rounds, round_frames * frame_s, update_bits), "rows": rows}


def _scenario(
    spec: ExperimentSpec, rounds: int, round_period_s: float, update_bits: float
) -> dict[str, Any]:
    """What the rows were measured on (JSON)."""
    world = World(spec)
    cfg = world.cfg
    d = distances_3d(
        world.ue_positions(0),
        cfg.ap_positions_m,
        area_m=cfg.area_m,
        height_m=cfg.ap_height_m,
        wrap=cfg.wrap_around,
    )
    return {
        "name": spec.name,
        "seed": spec.seed,
        "aps": len(spec.topology.aps),
        "ues": len(spec.topology.ues),
        "profiles": [ue.profile for ue in spec.topology.ues],
        "nearest_ap_m": [round(float(x), 1) for x in d.min(axis=1)],
        "area_m": spec.topology.area_m,
        "deadline_s": spec.link.deadline_s,
        "deadline_factor": None if spec.link.deadline_s is not None else spec.link.deadline_factor,
        "backoff_db": spec.link.backoff_db,
        "harq_max_retx": spec.link.harq_max_retx,
        "mcs_table": spec.link.mcs_table,
        "update_bits": update_bits,
        "rounds": rounds,
        "round_period_s": round_period_s,
        "csi_window": CSI_WINDOW,
        "csi_period_s": CSI_PERIOD_S,
        "estimator": "mmse",
        "power_policy": spec.algorithm.power,
    }
