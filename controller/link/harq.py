"""Sending one model update through the link: plan, attempt times, HARQ (DESIGN section 12).

``plan_links`` picks each user's MCS from the *estimated* channel; the caller asks the air for
the *true* gain at each of the ``attempt_times``; ``transmit`` plays the HARQ process out with
those gains and caller-drawn uniforms. Users are vectorised; the only loop runs over attempt
slots. ``transmit_bytes`` plays the same process with the update's bytes through a PHY
(``link.mode: iq``): each attempt decodes or not as the real receiver says. All times are
modelled seconds after the round's start; SI units except where a name ends in ``_db``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from controller.link.bler import bler
from controller.link.mcs import McsTable, choose_mcs
from protocol.arrays import NDArrayBool, NDArrayFloat, NDArrayInt

__all__ = [
    "ARRIVED",
    "FAILED",
    "LATE",
    "OUTAGE",
    "LinkConfig",
    "LinkOutcome",
    "LinkPlan",
    "PhyCarrier",
    "attempt_times",
    "deadline_from_plan",
    "plan_links",
    "transmit",
    "transmit_bytes",
]

ARRIVED, LATE, FAILED, OUTAGE = 0, 1, 2, 3


@dataclass(frozen=True)
class LinkConfig:
    """How updates are sent.

    Attributes:
        table: the MCS table (:func:`controller.link.mcs.get_table`).
        backoff_db: margin subtracted from the planned SINR before choosing the MCS, dB, >= 0.
        tbs_bits: transport block size, bit; default 8448, the largest LDPC code block of base
            graph 1 (K_cb, 3GPP TS 38.212 section 5.2.2), so one block is one code block.
        max_retx: HARQ retransmissions of a block after its first try (NR: up to 4 tries).
        chase_combining: if True, the tries of one block add their linear SINRs.
    """

    table: McsTable
    backoff_db: float = 1.0
    tbs_bits: int = 8448
    max_retx: int = 3
    chase_combining: bool = False

    def __post_init__(self) -> None:
        if not (np.isfinite(self.backoff_db) and self.backoff_db >= 0):
            raise ValueError(f"`backoff_db` must be finite and >= 0, got {self.backoff_db!r}")
        if int(self.tbs_bits) != self.tbs_bits or self.tbs_bits <= 0:
            raise ValueError(f"`tbs_bits` must be a positive integer, got {self.tbs_bits!r}")
        if int(self.max_retx) != self.max_retx or self.max_retx < 0:
            raise ValueError(f"`max_retx` must be an integer >= 0, got {self.max_retx!r}")


@dataclass(frozen=True, eq=False)
class LinkPlan:
    """What the planner promises each of ``U`` users, from estimated CSI.

    Attributes:
        mcs: ``[U]`` int64, position in the table, -1 on outage.
        planned_sinr_db: ``[U]`` float64, ``P G^ / (N0 B)``, dB (-inf without power or band).
        spectral_efficiency: ``[U]`` float64, eta_m, bit/s/Hz, 0 on outage.
        rate_bps: ``[U]`` float64, ``R_u = eta_m B_u``, bit/s, 0 on outage.
        n_blocks: ``[U]`` int64, ``ceil(S / TBS)`` (the last block padded to a full TBS).
        block_airtime_s: ``[U]`` float64, ``TBS / R_u``, s, inf on outage.
        max_attempts: ``[U]`` int64, ``n_blocks (1 + max_retx)``, 0 on outage.
    """

    mcs: NDArrayInt
    planned_sinr_db: NDArrayFloat
    spectral_efficiency: NDArrayFloat
    rate_bps: NDArrayFloat
    n_blocks: NDArrayInt
    block_airtime_s: NDArrayFloat
    max_attempts: NDArrayInt

    @property
    def outage(self) -> NDArrayBool:
        """``[U]`` bool: no MCS fits the planned SINR."""
        return np.asarray(self.mcs < 0)


@dataclass(frozen=True, eq=False)
class LinkOutcome:
    """What happened to each of ``U`` updates (all modelled, none measured).

    Attributes:
        status: ``[U]`` int64, index into :attr:`STATUS`: 0 arrived, 1 late (not delivered nor
            failed by the deadline), 2 failed (a block failed every try), 3 outage.
        arrived: ``[U]`` bool, ``status == 0``.
        arrival_s: ``[U]`` float64, ``t_u = compute_s + airtime_s``, s; inf unless arrived.
        airtime_s: ``[U]`` float64, airtime used including retries, s; stops at the deadline
            for late users; 0 on outage.
        transmissions: ``[U]`` int64, attempts made.
        retries: ``[U]`` int64, attempts beyond the first try of each block.
        blocks_delivered: ``[U]`` int64.
        comm_energy_j: ``[U]`` float64, ``P_u airtime_s``, J.
        true_sinr_db_mean: ``[U]`` float64, mean over the attempts made of the true SINR in dB
            (NaN if none).
    """

    STATUS: ClassVar[tuple[str, ...]] = ("arrived", "late", "failed", "outage")

    status: NDArrayInt
    arrived: NDArrayBool
    arrival_s: NDArrayFloat
    airtime_s: NDArrayFloat
    transmissions: NDArrayInt
    retries: NDArrayInt
    blocks_delivered: NDArrayInt
    comm_energy_j: NDArrayFloat
    true_sinr_db_mean: NDArrayFloat

    def status_names(self) -> list[str]:
        """``[U]`` the status of each user by name."""
        return [self.STATUS[int(s)] for s in self.status]


def _vector(name: str, x: NDArrayFloat, n: int | None = None) -> NDArrayFloat:
    """``x`` as a finite, non-negative ``[n]`` float64 array, or ValueError naming it."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1 or (n is not None and arr.shape != (n,)):
        raise ValueError(f"`{name}` must have shape [U] = ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr) & (arr >= 0)):
        raise ValueError(f"`{name}` must be finite and >= 0, got {arr}")
    return arr


def _positive(name: str, x: float) -> float:
    if not (np.isfinite(x) and x > 0):
        raise ValueError(f"`{name}` must be finite and > 0, got {x!r}")
    return float(x)


def _sinr_lin(power: NDArrayFloat, gain: NDArrayFloat, n0: float, bw: NDArrayFloat) -> NDArrayFloat:
    """``P G / (N0 B)`` (linear), broadcasting ``[U]`` against ``gain``; 0 where ``B == 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = power * gain / (n0 * bw)
    return np.asarray(np.where(bw > 0, s, 0.0), dtype=np.float64)


def _db(x: NDArrayFloat) -> NDArrayFloat:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(10.0 * np.log10(x), dtype=np.float64)


def plan_links(
    cfg: LinkConfig,
    *,
    power_w: NDArrayFloat,
    bandwidth_hz: NDArrayFloat,
    gain: NDArrayFloat,
    noise_psd_w_per_hz: float,
    update_bits: float,
) -> LinkPlan:
    """MCS, rate and block airtime of each user from its estimated channel.

    Args:
        cfg: the link configuration.
        power_w: ``[U]`` float64, transmit power P_u, W.
        bandwidth_hz: ``[U]`` float64, bandwidth B_u, Hz.
        gain: ``[U]`` float64, estimated channel gain G^_u (MR combining), dimensionless.
        noise_psd_w_per_hz: noise spectral density N0, W/Hz, > 0.
        update_bits: S, bits of one model update, > 0.
    """
    p = _vector("power_w", power_w)
    b = _vector("bandwidth_hz", bandwidth_hz, p.size)
    g = _vector("gain", gain, p.size)
    n0 = _positive("noise_psd_w_per_hz", noise_psd_w_per_hz)
    s_bits = _positive("update_bits", update_bits)
    sinr_db = _db(_sinr_lin(p, g, n0, b))
    mcs = choose_mcs(cfg.table, sinr_db, cfg.backoff_db)
    ok = mcs >= 0
    eta = np.where(ok, cfg.table.spectral_efficiency[np.where(ok, mcs, 0)], 0.0)
    rate = eta * b
    n_blocks = np.full(p.size, int(np.ceil(s_bits / cfg.tbs_bits)), dtype=np.int64)
    with np.errstate(divide="ignore"):
        airtime = np.where(rate > 0, cfg.tbs_bits / np.where(rate > 0, rate, 1.0), np.inf)
    return LinkPlan(
        mcs=mcs,
        planned_sinr_db=sinr_db,
        spectral_efficiency=eta,
        rate_bps=rate,
        n_blocks=n_blocks,
        block_airtime_s=airtime,
        max_attempts=np.where(ok, n_blocks * (1 + cfg.max_retx), 0).astype(np.int64),
    )


def _attempt_grid(
    plan: LinkPlan, compute_s: NDArrayFloat, deadline_s: float
) -> tuple[NDArrayFloat, NDArrayFloat, NDArrayBool]:
    """``compute_s`` checked, start times ``[U, A]`` (unmasked) and the attempts users may make."""
    if np.isnan(deadline_s):
        raise ValueError("`deadline_s` must not be NaN")
    c = _vector("compute_s", compute_s, plan.mcs.size)
    t = plan.block_airtime_s
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.clip(np.ceil((deadline_s - c) / t) + 1, 0, np.inf)  # an upper bound
    bound = np.where(np.isfinite(t), np.minimum(plan.max_attempts, fit), 0).astype(np.int64)
    a = np.arange(int(bound.max(initial=0)))
    with np.errstate(invalid="ignore"):
        start = c[:, None] + a[None, :] * t[:, None]
    mask = (a[None, :] < plan.max_attempts[:, None]) & (start < deadline_s)
    width = int(mask.sum(axis=1).max(initial=0))
    return c, start[:, :width], mask[:, :width]


def attempt_times(plan: LinkPlan, *, compute_s: NDArrayFloat, deadline_s: float) -> NDArrayFloat:
    """Start time of each user's ``a``-th transmission attempt, if it may be needed.

    Args:
        plan: from :func:`plan_links`.
        compute_s: ``[U]`` float64, T^comp_u, when the update is ready, s after round start.
        deadline_s: round deadline, s after round start (inf for none).

    Returns:
        ``[U, A]`` float64, ``compute_s[u] + a * block_airtime_s[u]``, s; NaN beyond the user's
        ``max_attempts``, at or after the deadline, or on outage. ``A`` is the largest number of
        attempts any user may need (0 if none).
    """
    _, start, mask = _attempt_grid(plan, compute_s, deadline_s)
    return np.where(mask, start, np.nan)


def transmit(
    cfg: LinkConfig,
    plan: LinkPlan,
    *,
    power_w: NDArrayFloat,
    bandwidth_hz: NDArrayFloat,
    noise_psd_w_per_hz: float,
    compute_s: NDArrayFloat,
    deadline_s: float,
    true_gain: NDArrayFloat,
    uniforms: NDArrayFloat,
) -> LinkOutcome:
    """Play the HARQ process out over the true channel; pure given ``uniforms``.

    Attempt ``a`` of user ``u`` sees the true SINR ``P_u true_gain[u, a] / (N0 B_u)`` and decodes
    iff ``uniforms[u, a] >= BLER(mcs_u, sinr)`` (with Chase combining, ``sinr`` sums the linear
    SINRs of that block's tries so far). A block failing ``1 + max_retx`` tries loses the update.

    Args:
        cfg: the configuration the plan was made with.
        plan: from :func:`plan_links`.
        power_w: ``[U]`` float64, P_u, W.
        bandwidth_hz: ``[U]`` float64, B_u, Hz.
        noise_psd_w_per_hz: N0, W/Hz.
        compute_s: ``[U]`` float64, T^comp_u, s.
        deadline_s: round deadline, s (inf for none).
        true_gain: ``[U, A']`` float64, true channel gain at each attempt, dimensionless, with
            ``A'`` at least the ``A`` of :func:`attempt_times`; finite where that is not NaN.
        uniforms: ``[U, A']`` float64 in [0, 1), from a seeded generator.
    """
    c, _, mask = _attempt_grid(plan, compute_s, deadline_s)
    u_count, a_count = mask.shape
    p = _vector("power_w", power_w, u_count)
    bw = _vector("bandwidth_hz", bandwidth_hz, u_count)
    n0 = _positive("noise_psd_w_per_hz", noise_psd_w_per_hz)
    gain = np.asarray(true_gain, dtype=np.float64)
    unif = np.asarray(uniforms, dtype=np.float64)
    for name, arr in (("true_gain", gain), ("uniforms", unif)):
        if arr.ndim != 2 or arr.shape[0] != u_count or arr.shape[1] < a_count:
            raise ValueError(f"`{name}` must have shape [U, >= {a_count}], got {arr.shape}")
    gain, unif = gain[:, :a_count], unif[:, :a_count]
    if not np.all(np.isfinite(gain[mask]) & (gain[mask] >= 0)):
        raise ValueError("`true_gain` must be finite and >= 0 where attempt_times is not NaN")
    if not np.all((unif[mask] >= 0) & (unif[mask] < 1)):
        raise ValueError("`uniforms` must lie in [0, 1) where attempt_times is not NaN")

    sinr = _sinr_lin(p[:, None], gain, n0, bw[:, None])  # [U, A]
    outage = plan.outage
    done = outage.copy()
    failed = np.zeros(u_count, dtype=bool)
    sent = np.zeros(u_count, dtype=np.int64)
    delivered = np.zeros(u_count, dtype=np.int64)
    tries = np.zeros(u_count, dtype=np.int64)  # tries of the current block
    combined = np.zeros(u_count)  # linear SINR summed over the current block's tries
    sinr_db_sum = np.zeros(u_count)
    for a in range(a_count):
        act = mask[:, a] & ~done
        if not act.any():
            break
        s_a = np.where(act, sinr[:, a], 0.0)
        combined = combined + s_a if cfg.chase_combining else s_a
        ok = act & (unif[:, a] >= bler(cfg.table, np.where(act, plan.mcs, -1), _db(combined)))
        sent += act
        sinr_db_sum += np.where(act, _db(s_a), 0.0)
        delivered += ok
        tries = np.where(ok, 0, tries + act)
        combined = np.where(ok, 0.0, combined)
        failed |= tries > cfg.max_retx
        done |= failed | (delivered == plan.n_blocks)
    return _outcome(plan, p, c, deadline_s, outage, failed, sent, delivered, tries, sinr_db_sum)


#: ``carrier(u, m, a, blocks, snr_db) -> (decoded [K], received)``: send user ``u``'s ``K``
#: transport blocks (``blocks``: ``K * tbs_bits / 8`` bytes) at table position ``m`` in its
#: attempt slots ``a .. a + K - 1``, block ``k`` at ``snr_db[k]`` dB; per block whether it
#: decoded (CRC clean), and the received bytes (anything where it did not).
PhyCarrier = Callable[[int, int, int, bytes, NDArrayFloat], tuple[Sequence[bool], bytes]]


def transmit_bytes(
    cfg: LinkConfig,
    plan: LinkPlan,
    *,
    power_w: NDArrayFloat,
    bandwidth_hz: NDArrayFloat,
    noise_psd_w_per_hz: float,
    compute_s: NDArrayFloat,
    deadline_s: float,
    true_gain: NDArrayFloat,
    payloads: Sequence[bytes | None],
    carrier: PhyCarrier,
    window: int = 64,
) -> tuple[LinkOutcome, list[bytes | None]]:
    """HARQ as :func:`transmit`, but the PHY decodes: ``payloads[u]`` crosses ``carrier``.

    User ``u``'s payload is cut into blocks of ``tbs_bits / 8`` bytes (the last padded with
    zeros); block ``k`` goes out in the next free attempt slot at that slot's true SINR (as in
    :func:`transmit`), a block that fails is sent again in the next slot, one failing
    ``1 + max_retx`` tries loses the update, and a slot at or after the deadline is never used.
    Tries are handed to the PHY ``window`` slots at a time as if each block decodes; after
    the first that does not, the rest of that window never happened (its slots carry the
    retry) and is sent again from there, so the outcome is the sequential one. Without Chase
    combining (the receiver keeps no soft bits across tries).

    Args:
        cfg: the configuration the plan was made with (``chase_combining`` false).
        plan: from :func:`plan_links`; ``n_blocks`` becomes the payload's own block count,
            which must not exceed it (the slots asked of the air follow the plan).
        power_w, bandwidth_hz, noise_psd_w_per_hz, compute_s, deadline_s, true_gain: as for
            :func:`transmit`.
        payloads: ``[U]`` each user's bytes, or None for a user that sent nothing (late).
        carrier: the PHY (:data:`PhyCarrier`).
        window: slots handed to the PHY at once, >= 1.

    Returns:
        The outcome, and per user the bytes that decoded (``payloads[u]`` as received, its
        padding cut off) where the update arrived, else None.
    """
    if cfg.chase_combining:
        raise ValueError("`chase_combining` must be off: the PHY keeps no soft bits across tries")
    if int(window) != window or window < 1:
        raise ValueError(f"`window` must be an integer >= 1, got {window!r}")
    u_count = plan.mcs.size
    if len(payloads) != u_count:
        raise ValueError(
            f"`payloads` must hold one entry per user ({u_count}), got {len(payloads)}"
        )
    tb = cfg.tbs_bits // 8
    if tb * 8 != cfg.tbs_bits:
        raise ValueError(f"`tbs_bits` must be whole bytes for the PHY, got {cfg.tbs_bits}")
    sizes = np.array([-(-len(b) // tb) if b else 0 for b in payloads], dtype=np.int64)
    too_big = np.flatnonzero((sizes > plan.n_blocks) & ~plan.outage)
    if too_big.size:
        u = int(too_big[0])
        raise ValueError(
            f"`payloads[{u}]` needs {sizes[u]} blocks, more than the plan's {plan.n_blocks[u]}"
        )
    n_blocks = np.where(sizes > 0, sizes, plan.n_blocks)
    plan = dataclasses.replace(
        plan,
        n_blocks=n_blocks,
        max_attempts=np.where(plan.outage, 0, n_blocks * (1 + cfg.max_retx)).astype(np.int64),
    )
    c, _, mask = _attempt_grid(plan, compute_s, deadline_s)
    a_count = mask.shape[1]
    p = _vector("power_w", power_w, u_count)
    bw = _vector("bandwidth_hz", bandwidth_hz, u_count)
    n0 = _positive("noise_psd_w_per_hz", noise_psd_w_per_hz)
    gain = np.asarray(true_gain, dtype=np.float64)
    if gain.ndim != 2 or gain.shape[0] != u_count or gain.shape[1] < a_count:
        raise ValueError(f"`true_gain` must have shape [U, >= {a_count}], got {gain.shape}")
    gain = gain[:, :a_count]
    if not np.all(np.isfinite(gain[mask]) & (gain[mask] >= 0)):
        raise ValueError("`true_gain` must be finite and >= 0 where attempts are allowed")
    sinr_db = _db(_sinr_lin(p[:, None], gain, n0, bw[:, None]))  # [U, A]

    failed = np.zeros(u_count, dtype=bool)
    sent = np.zeros(u_count, dtype=np.int64)
    delivered = np.zeros(u_count, dtype=np.int64)
    tries = np.zeros(u_count, dtype=np.int64)
    sinr_db_sum = np.zeros(u_count)
    received: list[bytes | None] = [None] * u_count
    for u in range(u_count):
        body = payloads[u]
        if plan.outage[u] or not body:
            continue
        n = int(n_blocks[u])
        data = body + bytes(n * tb - len(body))
        slots = int(mask[u].sum())  # the allowed slots are the first ones
        got: list[bytes] = []
        a = k = 0
        while k < n and a < slots and not failed[u]:
            w = min(window, n - k, slots - a)
            ok, out = carrier(
                u, int(plan.mcs[u]), a, data[k * tb : (k + w) * tb], sinr_db[u, a : a + w]
            )
            flags = np.asarray(ok, dtype=bool)
            if flags.shape != (w,) or len(out) != w * tb:
                raise ValueError(
                    f"`carrier` answered {flags.shape} flags, {len(out)} bytes for {w} blocks"
                )
            j = w if flags.all() else int(np.argmin(flags))  # the first failure, or none
            used = min(j + 1, w)
            got.append(out[: j * tb])
            sent[u] += used
            sinr_db_sum[u] += float(np.sum(sinr_db[u, a : a + used]))
            delivered[u] += j
            k, a = k + j, a + used
            if j < w:
                tries[u] = (tries[u] if j == 0 else 0) + 1
                failed[u] = tries[u] > cfg.max_retx
            else:
                tries[u] = 0
        if delivered[u] == n:
            received[u] = b"".join(got)[: len(body)]
    out_ = _outcome(
        plan, p, c, deadline_s, plan.outage, failed, sent, delivered, tries, sinr_db_sum
    )
    return out_, [b if out_.arrived[u] else None for u, b in enumerate(received)]


def _outcome(
    plan: LinkPlan,
    power: NDArrayFloat,
    compute_s: NDArrayFloat,
    deadline_s: float,
    outage: NDArrayBool,
    failed: NDArrayBool,
    sent: NDArrayInt,
    delivered: NDArrayInt,
    tries: NDArrayInt,
    sinr_db_sum: NDArrayFloat,
) -> LinkOutcome:
    """Statuses, times and energies from the HARQ counters of :func:`transmit`."""
    with np.errstate(invalid="ignore"):
        used = np.where(sent > 0, sent * plan.block_airtime_s, 0.0)  # 0 * inf on outage
    end = compute_s + used
    status = np.where(failed, FAILED, np.where(delivered == plan.n_blocks, ARRIVED, LATE))
    status = np.where(end > deadline_s, LATE, status)
    status = np.where(outage, OUTAGE, status).astype(np.int64)
    late = status == LATE
    airtime = np.where(late, np.clip(np.minimum(used, deadline_s - compute_s), 0.0, None), used)
    arrived = status == ARRIVED
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_db = np.where(sent > 0, sinr_db_sum / np.maximum(sent, 1), np.nan)
    return LinkOutcome(
        status=status,
        arrived=arrived,
        arrival_s=np.where(arrived, compute_s + airtime, np.inf),
        airtime_s=airtime,
        transmissions=sent,
        retries=sent - (delivered + (tries > 0)),
        blocks_delivered=delivered,
        comm_energy_j=power * airtime,
        true_sinr_db_mean=mean_db,
    )


def deadline_from_plan(plan: LinkPlan, compute_s: NDArrayFloat, factor: float) -> float:
    """``factor * max_u (compute_s + n_blocks * block_airtime_s)`` over users not in outage, s.

    The planned round latency at the MCS rates without retries, scaled; inf if all users are in
    outage. ``compute_s`` is ``[U]`` float64, s; ``factor`` finite and > 0.
    """
    f = _positive("factor", factor)
    c = _vector("compute_s", compute_s, plan.mcs.size)
    ok = ~plan.outage
    if not ok.any():
        return float("inf")
    return f * float(np.max(c[ok] + plan.n_blocks[ok] * plan.block_airtime_s[ok]))
