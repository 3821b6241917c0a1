"""The round core: Algorithm 1 of DESIGN section 8 as pure steps (no I/O, no clocks, no HTTP).

A driver (the networked engine, or the in-process simulator) runs, for round ``t``:

1. :func:`select` the clients among the live ones (the algorithm's rule);
2. :func:`plan` CRA + CSM + the link plan from the estimated gains;
3. train them (the driver's business) into :class:`ClientReport` s;
4. :func:`link_request` -> ask the air for the true gains -> :func:`resolve_link`: which
   updates arrive, late or failed, and what the airtime and energy cost;
5. :func:`weights` over the clients whose updates arrived;
6. aggregate (securely or in the clear; the driver's business) and :func:`apply_update`;

With ``link.mode: iq`` steps 4-6 change order, since the radio decides on the bytes: the
weights go over the clients that may send (:func:`transmitters`, not in outage), each update
is uploaded, and :func:`carry_updates` sends its bytes through the PHY; what decoded is what
the driver aggregates, and :func:`apply_update` normalises over the clients that arrived.
7. :func:`record` the round's metrics and the power policy's reward.

Every step takes and returns typed values (``controller.round.types``); given the same spec,
seed and inputs every driver gets the same plans, link outcomes and dropouts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from controller.algorithms.base import Algorithm
from controller.allocation.instance import AllocationInstance, ObjectiveWeights
from controller.link import (
    LinkConfig,
    LinkOutcome,
    LinkPlan,
    attempt_times,
    deadline_from_plan,
    get_table,
    measured_table,
    plan_links,
    transmit,
    transmit_bytes,
)
from controller.round.reward import round_reward
from controller.round.types import ClientReport, LinkRequest, LinkResult, RoundPlan, RoundRecord
from protocol.arrays import NDArrayFloat, NDArrayInt
from protocol.physics import noise_psd_w_per_hz
from protocol.spec import DATASET_TRAIN_SIZES, ExperimentSpec, LinkSpec

__all__ = [
    "LINK_FEATURES",
    "PhyLink",
    "apply_update",
    "build_instance",
    "carry_updates",
    "link_config",
    "link_features",
    "link_request",
    "model_round_latency",
    "plan",
    "record",
    "resolve_link",
    "samples_guess",
    "select",
    "transmitters",
    "weights",
]

#: Gain used for a UE that no AP has reported yet (-100 dB: a far, weak user), dimensionless.
_UNKNOWN_GAIN = 1e-10
#: Stream tag of the HARQ decoding draws (keyed by seed, round and UE).
_TAG_HARQ = 0x4A51
#: Stream tag of the PHY channel's randomness in ``link.mode: iq``.
_TAG_IQ = 0x1A51
#: Columns of :func:`link_features`.
LINK_FEATURES = 3


def link_config(link: LinkSpec) -> LinkConfig:
    """The link layer's configuration from the spec's ``link:`` section."""
    return LinkConfig(
        table=measured_table(link.bler_table)
        if link.bler == "measured"
        else get_table(link.mcs_table),
        backoff_db=link.backoff_db,
        tbs_bits=link.tbs_bits,
        max_retx=link.harq_max_retx,
        chase_combining=link.chase_combining,
    )


# -- 1. select ----------------------------------------------------------------------------------
def samples_guess(spec: ExperimentSpec) -> int:
    """The samples a UE is planned with until it first reports its own: its share of the
    dataset (``dataset.samples_per_client`` where set); in ``mode: fedmarl`` the transitions
    an agent learns from per round (episodes x slots, the same for every agent)."""
    if spec.mode == "fedmarl":
        return spec.fedmarl.transitions_per_round
    size = DATASET_TRAIN_SIZES[spec.dataset.name]
    return spec.dataset.samples_per_client or size // spec.n_ues


def select(
    algorithm: Algorithm,
    spec: ExperimentSpec,
    round_index: int,
    live: Sequence[str],
    rng: np.random.Generator,
) -> list[str]:
    """The clients of round ``round_index`` among the ``live`` UEs, in topology order."""
    order = {ue.id: i for i, ue in enumerate(spec.topology.ues)}
    ues = sorted(live, key=order.__getitem__)
    k = min(spec.clients_per_round, len(ues))
    return list(algorithm.select_clients(round_index, ues, k, rng))


# -- 2. plan ------------------------------------------------------------------------------------
def build_instance(
    spec: ExperimentSpec,
    ue_ids: Sequence[str],
    gains: NDArrayFloat | None,
    samples: Mapping[str, int],
    update_bits: float,
) -> AllocationInstance:
    """The round's allocation problem for ``ue_ids``.

    Args:
        gains: ``[U]`` estimated combined gains ``G^_u`` (dimensionless), NaN or ``None`` where
            no CSI is available (those users get a weak nominal gain, -100 dB).
        samples: local training samples per UE (one epoch).
        update_bits: size of one model update ``S``, bit.
    """
    by_id = {ue.id: ue for ue in spec.topology.ues}
    profiles = [spec.profile(by_id[u]) for u in ue_ids]
    g = np.full(len(ue_ids), np.nan) if gains is None else np.asarray(gains, dtype=np.float64)
    g = np.where(np.isfinite(g) & (g > 0), g, _UNKNOWN_GAIN)
    d = np.array([samples[u] * spec.fl.local_epochs for u in ue_ids], dtype=np.float64)
    return AllocationInstance.from_profiles(
        gain=g,
        profiles=profiles,
        samples=d,
        bandwidth_hz=spec.radio.bandwidth_hz,
        noise_psd_w_per_hz=noise_psd_w_per_hz(spec.radio.noise_figure_db),
        update_bits=update_bits,
        weights=ObjectiveWeights.from_spec(spec.weights),
    )


def plan(
    algorithm: Algorithm,
    spec: ExperimentSpec,
    *,
    index: int,
    ue_ids: Sequence[str],
    gains: NDArrayFloat | None,
    samples: Mapping[str, int],
    update_bits: float,
    anchor_frame: int,
    history: Mapping[str, NDArrayFloat] | None = None,
) -> RoundPlan:
    """CRA + CSM (the algorithm's allocation) and the link plan of one round.

    Args:
        gains: ``[U]`` estimated ``G^_u`` from the latest CSI (``None``: no CSI).
        anchor_frame: frame of that CSI (-1: none).
        history: last link outcome per UE (rows of :func:`link_features`), the power policy's
            state; UEs without one get zeros.
    """
    inst = build_instance(spec, ue_ids, gains, samples, update_bits)
    state = np.stack([_history_row(history, u) for u in ue_ids])
    allocation = algorithm.allocate(inst, link_state=state)
    frame_s = spec.radio.tau_c / spec.radio.sample_rate_hz
    ids = tuple(ue_ids)
    if not spec.link.enabled:
        none = np.full(len(ids), -1, dtype=np.int64)
        return RoundPlan(index, ids, inst, allocation, None, anchor_frame, frame_s, np.inf, none)
    cfg = link_config(spec.link)
    link = plan_links(
        cfg,
        power_w=allocation.power_w,
        bandwidth_hz=allocation.bandwidth_hz,
        gain=inst.gain,
        noise_psd_w_per_hz=inst.noise_psd_w_per_hz,
        update_bits=update_bits,
    )
    compute = inst.workload_cycles / allocation.freq_hz
    deadline = spec.link.deadline_s or deadline_from_plan(
        link, compute, factor=spec.link.deadline_factor
    )
    if not np.isfinite(deadline):  # every user in outage: wait as long as the system model's plan
        deadline = spec.link.deadline_factor * allocation.round_latency_s
    mcs = np.where(link.mcs >= 0, cfg.table.index[np.maximum(link.mcs, 0)], -1)
    return RoundPlan(index, ids, inst, allocation, link, anchor_frame, frame_s, deadline, mcs)


def _subset(link: LinkPlan, idx: NDArrayInt) -> LinkPlan:
    """The link plan of the users at ``idx``."""
    return LinkPlan(**{f.name: getattr(link, f.name)[idx] for f in dataclasses.fields(link)})


def _history_row(history: Mapping[str, NDArrayFloat] | None, ue: str) -> NDArrayFloat:
    row = None if history is None else history.get(ue)
    return np.zeros(LINK_FEATURES) if row is None else np.asarray(row, dtype=np.float64)


# -- 4. link ------------------------------------------------------------------------------------
def _reported(p: RoundPlan, reports: Mapping[str, ClientReport]) -> NDArrayInt:
    """Plan positions of the clients that reported, in plan order."""
    return np.array([i for i, u in enumerate(p.ue_ids) if u in reports], dtype=np.int64)


def _model_compute_s(p: RoundPlan, reports: Mapping[str, ClientReport]) -> NDArrayFloat:
    """``[R]`` modelled training time ``c_u D_u / f_applied`` of the reporters, s."""
    idx = _reported(p, reports)
    f_plan = p.allocation.freq_hz[idx]
    f = np.array([reports[p.ue_ids[i]].freq_applied_hz for i in idx], dtype=np.float64)
    f = np.where(np.isfinite(f) & (f > 0), f, f_plan)
    return np.asarray(p.instance.workload_cycles[idx] / f, dtype=np.float64)


def link_request(p: RoundPlan, reports: Mapping[str, ClientReport]) -> LinkRequest | None:
    """The attempts whose true channel the air must give (None when the link layer is off)."""
    if p.link is None:
        return None
    idx = _reported(p, reports)
    compute = _model_compute_s(p, reports)
    times = attempt_times(_subset(p.link, idx), compute_s=compute, deadline_s=p.deadline_s)
    anchor = max(p.anchor_frame, 0)
    with np.errstate(invalid="ignore"):
        frames = anchor + np.floor(np.nan_to_num(times, nan=0.0) / p.frame_period_s)
    return LinkRequest(compute, times, frames.astype(np.int64))


def _uniforms(
    spec: ExperimentSpec, round_index: int, ue_ids: Sequence[str], n: int
) -> NDArrayFloat:
    """``[U, n]`` HARQ decoding draws, each UE's keyed by (seed, round, its topology index)."""
    order = {ue.id: i for i, ue in enumerate(spec.topology.ues)}
    rows = [
        np.random.default_rng([spec.seed, _TAG_HARQ, round_index, order[u]]).random(n)
        for u in ue_ids
    ]
    return np.stack(rows) if rows else np.zeros((0, n))


def resolve_link(
    spec: ExperimentSpec,
    p: RoundPlan,
    reports: Mapping[str, ClientReport],
    request: LinkRequest | None,
    true_gain: NDArrayFloat | None,
) -> LinkResult:
    """Which reported updates arrive, and their modelled latency and energy.

    Args:
        request: from :func:`link_request` (None: link layer off, every update arrives at its
            Shannon-rate latency of the system model).
        true_gain: ``[R, A]`` the air's true ``G_u`` at each attempt of ``request``.
    """
    idx = _reported(p, reports)
    ids = tuple(p.ue_ids[i] for i in idx)
    inst, alloc = p.instance, p.allocation
    power, band = alloc.power_w[idx], alloc.bandwidth_hz[idx]
    compute_energy = _compute_energy(p, reports)
    compute = _model_compute_s(p, reports)
    n = len(ids)
    if p.link is None or request is None or true_gain is None:
        comm = alloc.comm_latency_s[idx]
        return LinkResult(
            ue_ids=ids,
            status=np.zeros(n, dtype=np.int64),
            mcs_index=np.full(n, -1, dtype=np.int64),
            model_arrival_s=compute + comm,
            model_latency_s=compute + comm,
            model_energy_j=power * comm + compute_energy,
            retries=np.zeros(n, dtype=np.int64),
            outcome=None,
            planned_sinr_db=np.full(n, np.nan),
            airtime_s=comm,
            comm_energy_j=power * comm,
        )
    link = _subset(p.link, idx)
    gains = np.where(np.isnan(request.times_s), np.nan, true_gain)
    out = transmit(
        link_config(spec.link),
        link,
        power_w=power,
        bandwidth_hz=band,
        noise_psd_w_per_hz=inst.noise_psd_w_per_hz,
        compute_s=compute,
        deadline_s=p.deadline_s,
        true_gain=gains,
        uniforms=_uniforms(spec, p.index, ids, gains.shape[1]),
    )
    return _link_result(p, idx, link, out, compute_energy)


def transmitters(p: RoundPlan, reports: Mapping[str, ClientReport]) -> list[str]:
    """The reporters that may send (an MCS fits their planned SINR), in plan order."""
    idx = _reported(p, reports)
    if p.link is None:
        return [p.ue_ids[i] for i in idx]
    return [p.ue_ids[i] for i in idx if p.link.mcs[i] >= 0]


#: ``phy(ue_id, mcs_index, blocks, snr_db, seed) -> (decoded [K], received)``: the PHY
#: between a UE and the APs (the driver's wire to the air); ``mcs_index`` is the table's index.
PhyLink = Callable[[str, int, bytes, NDArrayFloat, Sequence[int]], tuple[Sequence[bool], bytes]]


def carry_updates(
    spec: ExperimentSpec,
    p: RoundPlan,
    reports: Mapping[str, ClientReport],
    request: LinkRequest,
    true_gain: NDArrayFloat,
    payloads: Mapping[str, bytes],
    carry: PhyLink,
) -> tuple[LinkResult, dict[str, bytes]]:
    """``link.mode: iq``: every reporter's uploaded bytes through the PHY, HARQ as section 12.

    Args:
        request, true_gain: as for :func:`resolve_link`.
        payloads: each uploaded update's bytes by UE (a reporter missing here sent nothing:
            late).
        carry: the PHY (:data:`PhyLink`); its channel is keyed by (seed, round, UE, slot).

    Returns:
        The link's outcome, and the bytes that decoded of each update that arrived.
    """
    if p.link is None:
        raise ValueError("link.mode iq needs the link layer (`link.enabled`)")
    idx = _reported(p, reports)
    ids = tuple(p.ue_ids[i] for i in idx)
    power, band = p.allocation.power_w[idx], p.allocation.bandwidth_hz[idx]
    cfg = link_config(spec.link)
    link = _subset(p.link, idx)
    order = {ue.id: i for i, ue in enumerate(spec.topology.ues)}

    def phy(
        u: int, m: int, slot: int, blocks: bytes, snr_db: NDArrayFloat
    ) -> tuple[Sequence[bool], bytes]:
        key = [spec.seed, _TAG_IQ, p.index, order[ids[u]], slot]
        return carry(ids[u], int(cfg.table.index[m]), blocks, snr_db, key)

    out, received = transmit_bytes(
        cfg,
        link,
        power_w=power,
        bandwidth_hz=band,
        noise_psd_w_per_hz=p.instance.noise_psd_w_per_hz,
        compute_s=request.model_compute_s,
        deadline_s=p.deadline_s,
        true_gain=np.where(np.isnan(request.times_s), np.nan, true_gain),
        payloads=[payloads.get(u) for u in ids],
        carrier=phy,
    )
    decoded = {u: b for u, b in zip(ids, received, strict=True) if b is not None}
    return _link_result(p, idx, link, out, _compute_energy(p, reports)), decoded


def _compute_energy(p: RoundPlan, reports: Mapping[str, ClientReport]) -> NDArrayFloat:
    """``[R]`` ``kappa_u c_u D_u f_u^2`` of the reporters at the frequency applied, J."""
    idx = _reported(p, reports)
    f = np.array([reports[p.ue_ids[i]].freq_applied_hz for i in idx], dtype=np.float64)
    f = np.where(np.isfinite(f) & (f > 0), f, p.allocation.freq_hz[idx])
    return np.asarray(p.instance.kappa[idx] * p.instance.workload_cycles[idx] * f**2)


def _link_result(
    p: RoundPlan, idx: NDArrayInt, link: LinkPlan, out: LinkOutcome, compute_energy: NDArrayFloat
) -> LinkResult:
    """The :class:`LinkResult` of the reporters at ``idx`` from the link layer's outcome."""
    latency = np.where(out.arrived, out.arrival_s, p.deadline_s)
    return LinkResult(
        ue_ids=tuple(p.ue_ids[i] for i in idx),
        status=out.status,
        mcs_index=p.mcs_index[idx],
        model_arrival_s=out.arrival_s,
        model_latency_s=latency,
        model_energy_j=out.comm_energy_j + compute_energy,
        retries=out.retries,
        outcome=out,
        planned_sinr_db=link.planned_sinr_db,
        airtime_s=out.airtime_s,
        comm_energy_j=out.comm_energy_j,
    )


def link_features(result: LinkResult) -> dict[str, NDArrayFloat]:
    """Each reporter's last link outcome as the power policy sees it, ``[LINK_FEATURES]``.

    Columns: lost (1 if the update did not arrive), HARQ retries per block sent, and the
    SINR surprise ``(planned - true mean SINR) / 10 dB`` clipped to +-3 (0 without a link).
    """
    out: dict[str, NDArrayFloat] = {}
    o = result.outcome
    for i, u in enumerate(result.ue_ids):
        lost = float(result.status[i] != 0)
        if o is None:
            out[u] = np.array([lost, 0.0, 0.0])
            continue
        per_block = float(o.retries[i]) / max(1.0, float(o.transmissions[i]))
        gap = (result.planned_sinr_db[i] - o.true_sinr_db_mean[i]) / 10.0
        gap = float(np.clip(gap, -3.0, 3.0)) if np.isfinite(gap) else 0.0
        out[u] = np.array([lost, per_block, gap])
    return out


# -- 5. weights ---------------------------------------------------------------------------------
def weights(
    algorithm: Algorithm, reports: Mapping[str, ClientReport], arrived: Sequence[str]
) -> dict[str, float]:
    """The algorithm's aggregation weights ``q_u`` over the clients whose updates arrived."""
    if not arrived:
        return {}
    losses = np.array([reports[u].loss for u in arrived], dtype=np.float64)
    sizes = np.array([reports[u].samples for u in arrived], dtype=np.float64)
    q = np.asarray(algorithm.aggregation_weights(losses, sizes), dtype=np.float64)
    return dict(zip(arrived, q.tolist(), strict=True))


# -- 6. aggregate -------------------------------------------------------------------------------
def apply_update(
    global_flat: npt.NDArray[np.float32],
    delta_sum: NDArrayFloat,
    weight_of: Mapping[str, float],
    contributors: Sequence[str],
) -> npt.NDArray[np.float32] | None:
    """``w + sum_u q_u delta_u / sum_u q_u`` over the contributors; None if there is no weight.

    Args:
        global_flat: ``[D]`` the global model, float32.
        delta_sum: ``[D]`` the (securely) summed weighted updates, float64.
    """
    total = float(sum(weight_of[u] for u in contributors))
    if not contributors or total <= 0:
        return None
    return np.asarray(global_flat + (delta_sum / total).astype(np.float32))


# -- 7. record ----------------------------------------------------------------------------------
def model_round_latency(p: RoundPlan, link: LinkResult) -> float:
    """Modelled round latency, s: the last arrival, or the deadline when an update was late."""
    arrived = set(link.arrived)
    arrivals = zip(link.ue_ids, link.model_arrival_s, strict=True)
    latency = max((float(t) for u, t in arrivals if u in arrived), default=0.0)
    if link.outcome is not None and np.any(link.status == 1):  # someone late: waited to deadline
        latency = max(latency, p.deadline_s)
    return latency


def record(
    spec: ExperimentSpec,
    p: RoundPlan,
    reports: Mapping[str, ClientReport],
    link: LinkResult,
    contributors: Sequence[str],
    *,
    accuracy: float | None,
    loss: float | None,
    fairness_var: float | None,
    previous_model_time_s: float,
    updated: bool,
) -> RoundRecord:
    """The round's metrics and the power policy's reward ``R_t`` (DESIGN section 6).

    ``R_t = alpha A_t - beta sum_u E_u - gamma sum_u T_u`` over the selected clients, with the
    modelled ``E_u`` and ``T_u`` of the link layer: a lost update costs the whole deadline
    (the round waited for it) and the energy of its tries; a client that crashed costs the
    deadline too. ``A_t`` is the accuracy of the committed global model (0 if unknown).
    """
    arrived = set(link.arrived)
    round_latency = model_round_latency(p, link)
    crashed = [u for u in p.ue_ids if u not in reports]
    waited = p.deadline_s if np.isfinite(p.deadline_s) else round_latency
    t_users = np.concatenate([link.model_latency_s, np.full(len(crashed), waited)])
    w = ObjectiveWeights.from_spec(spec.weights)
    reward = round_reward(
        w,
        accuracy=accuracy or 0.0,
        energy_j=np.concatenate([link.model_energy_j, np.zeros(len(crashed))]),
        latency_s=t_users,
    )
    meters = [r.measured_energy_j for r in reports.values() if r.measured_energy_j is not None]
    mcs = link.mcs_index[link.mcs_index >= 0]
    link_lost = len(link.dropped)
    # Crashes: no report, or (when the model was updated) arrived but not in the sum.
    crashes = len(crashed) + (len(arrived - set(contributors)) if updated else 0)
    return RoundRecord(
        index=p.index,
        accuracy=accuracy,
        loss=loss,
        fairness_var=fairness_var,
        model_latency_s=round_latency,
        model_energy_j=float(np.sum(link.model_energy_j)),
        model_time_s=previous_model_time_s + round_latency,
        measured_train_s=max((reports[u].measured_train_s for u in contributors), default=0.0),
        measured_energy_j=float(sum(meters)) if meters else None,
        link_dropouts=link_lost,
        crash_dropouts=crashes,
        mean_mcs_index=float(np.mean(mcs)) if mcs.size else None,
        reward=reward,
        updated=updated,
    )
