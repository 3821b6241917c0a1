"""Validated, latest-per-AP CSI and the matrix the controller allocates from.

:class:`CSIStore` takes raw ZeroMQ messages, validates each one (decoding, version, shapes,
finiteness, known AP, known UEs, expected antenna count, increasing frame numbers), counts
every rejected message by kind, and never raises. :meth:`CSIStore.snapshot` assembles the
latest CSI as an ``[L, N_max, U]`` (AP x antenna x UE) matrix with per-AP staleness;
:meth:`CSIStore.history` gives each AP's last accepted messages (``controller.air.MeasuredAir``
reads the channel at past frames from them).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.csi import MAX_UES, CSIDecodeError, CSIMessage, decode_csi_multipart

__all__ = ["CSICounters", "CSISnapshot", "CSIStore"]

#: Most APs and UEs a store learns from the messages (``ap_ids`` / ``ue_ids`` ``None``), so that
#: a publisher inventing ids cannot grow it without bound (the spec's limit on APs, and the most
#: UEs one CSI message can name).
_MAX_LEARNT_APS = 256
_MAX_LEARNT_UES = MAX_UES


@dataclass(frozen=True)
class CSICounters:
    """Message counts; ``received == accepted + malformed + unknown_ap + stale``."""

    received: int
    accepted: int
    malformed: int
    unknown_ap: int
    stale: int
    resets: int
    by_reason: dict[str, int]


@dataclass(frozen=True)
class CSISnapshot:
    """The latest CSI of every AP.

    Attributes:
        ap_ids: ``[L]``; ue_ids: ``[U]``.
        h: ``[L, N_max, U]`` complex128 channel estimates (zero where an AP has no antenna
            ``n`` or no estimate of UE ``u``); units as in ``protocol.csi``.
        valid: ``[L, U]`` bool, AP ``l`` has a fresh estimate of UE ``u``.
        n_ant: ``[L]`` antennas of each AP's latest message (0: none yet).
        noise_var: ``[L]`` noise variance per sample (NaN: none yet).
        snr_db: ``[L, U]`` estimated pilot SNR, dB (NaN: none).
        frame: ``[L]`` latest frame index (-1: none).
        age_s: ``[L]`` seconds since that message arrived (inf: none).
        stale: ``[L]`` bool, ``age_s > max_age_s``.
        est: ``[L]`` estimator of each AP's latest message ("" if none).
    """

    ap_ids: tuple[str, ...]
    ue_ids: tuple[str, ...]
    h: npt.NDArray[np.complex128]
    valid: npt.NDArray[np.bool_]
    n_ant: npt.NDArray[np.int64]
    noise_var: npt.NDArray[np.float64]
    snr_db: npt.NDArray[np.float64]
    frame: npt.NDArray[np.int64]
    age_s: npt.NDArray[np.float64]
    stale: npt.NDArray[np.bool_]
    est: tuple[str, ...]


@dataclass
class _Latest:
    msg: CSIMessage
    at: float


class CSIStore:
    """Thread-safe store of the latest valid CSI per AP.

    Args:
        ap_ids: the APs of the experiment; messages from others count as ``unknown_ap``.
            ``None``: any AP is accepted, learnt in order of first appearance (at most 256;
            later ones count as ``unknown_ap``).
        ue_ids: the UEs of the experiment (the matrix's UE order); ``None``: learnt from the
            messages, in order of first appearance (at most ``protocol.csi.MAX_UES``). A
            message naming another UE is malformed (reason ``unknown_ue``).
        n_ant: expected antennas per AP (``{ap_id: n}``); ``None``: any, per message.
        max_age_s: an AP whose latest message is older is stale (s).
        clock: monotonic clock, s (tests inject one).
        history: accepted messages kept per AP, oldest dropped first (>= 1); an AP that
            restarts (its frame numbers start again) starts a new history.
    """

    def __init__(
        self,
        *,
        ap_ids: Sequence[str] | None,
        ue_ids: Sequence[str] | None = None,
        n_ant: Mapping[str, int] | None = None,
        max_age_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        history: int = 256,
    ) -> None:
        if max_age_s <= 0:
            raise ValueError("`max_age_s` must be positive.")
        if history < 1:
            raise ValueError(f"`history` must be >= 1, got {history}.")
        self._fixed_aps = ap_ids is not None
        self._ap_list: list[str] = list(dict.fromkeys(ap_ids or []))
        self._ap_set = set(self._ap_list)
        self._fixed_ues = ue_ids is not None
        self._ue_ids: list[str] = list(dict.fromkeys(ue_ids or []))
        self._ue_set = set(self._ue_ids)
        self._n_ant = dict(n_ant or {})
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, _Latest] = {}
        self._history_len = history
        self._history: dict[str, deque[CSIMessage]] = {}
        self._counts: Counter[str] = Counter()
        self._reasons: Counter[str] = Counter()

    # -- ingest --------------------------------------------------------------------------------
    def ingest_multipart(self, frames: Sequence[bytes]) -> bool:
        """Decode and ingest one ZeroMQ message; ``True`` if accepted. Never raises."""
        try:
            msg = decode_csi_multipart(frames)
        except CSIDecodeError as err:
            return self._count("malformed", err.reason)
        except Exception:  # a decoder bug must not take the controller down
            return self._count("malformed", "internal")
        return self._admit(msg)

    def ingest(self, msg: CSIMessage) -> bool:
        """Ingest an already decoded message (validated again); ``True`` if accepted. Never
        raises."""
        try:
            msg.validate()
        except CSIDecodeError as err:
            return self._count("malformed", err.reason)
        except Exception:
            return self._count("malformed", "internal")
        return self._admit(msg)

    def _count(self, kind: str, reason: str) -> bool:
        """Count one rejected message (``received`` with it, so the counters always add up)."""
        with self._lock:
            self._counts["received"] += 1
            self._counts[kind] += 1
            self._reasons[reason] += 1
        return False

    def _admit(self, msg: CSIMessage) -> bool:
        try:
            now = self._clock()
            with self._lock:
                verdict = self._verdict(msg, now)
                if verdict is None:
                    self._keep(msg, now)
                    self._counts["received"] += 1
                    self._counts["accepted"] += 1
                    return True
        except Exception:  # a store bug (or a failing clock) must not take the controller down
            verdict = ("malformed", "internal")
        return self._count(*verdict)

    def _verdict(self, msg: CSIMessage, now: float) -> tuple[str, str] | None:
        """Why a valid ``msg`` is rejected, as ``(kind, reason)``; ``None``: accept it.
        Called with the lock held; changes nothing."""
        known_ap = msg.ap_id in self._ap_set
        if not known_ap and (self._fixed_aps or len(self._ap_list) >= _MAX_LEARNT_APS):
            return "unknown_ap", "unknown_ap"
        want = self._n_ant.get(msg.ap_id)
        if want is not None and msg.n_ant != want:
            return "malformed", "shape"
        new_ues = sum(u not in self._ue_set for u in msg.ue_ids)
        if new_ues and (self._fixed_ues or len(self._ue_ids) + new_ues > _MAX_LEARNT_UES):
            return "malformed", "unknown_ue"
        prev = self._latest.get(msg.ap_id)
        if prev is not None and msg.frame <= prev.msg.frame and now - prev.at <= self.max_age_s:
            return "stale", "stale"
        return None

    def _keep(self, msg: CSIMessage, now: float) -> None:
        """Make the accepted ``msg`` its AP's latest (lock held)."""
        prev = self._latest.get(msg.ap_id)
        if prev is not None and msg.frame <= prev.msg.frame:
            self._counts["resets"] += 1  # silent > max_age_s: the AP restarted, frames from 0
            self._history.pop(msg.ap_id, None)
        for u in msg.ue_ids:
            if u not in self._ue_set:
                self._ue_set.add(u)
                self._ue_ids.append(u)
        if msg.ap_id not in self._ap_set:
            self._ap_set.add(msg.ap_id)
            self._ap_list.append(msg.ap_id)
        self._latest[msg.ap_id] = _Latest(msg, now)
        past = self._history.setdefault(msg.ap_id, deque(maxlen=self._history_len))
        past.append(msg)

    # -- queries -------------------------------------------------------------------------------
    @property
    def counters(self) -> CSICounters:
        with self._lock:
            c = self._counts
            return CSICounters(
                received=c["received"],
                accepted=c["accepted"],
                malformed=c["malformed"],
                unknown_ap=c["unknown_ap"],
                stale=c["stale"],
                resets=c["resets"],
                by_reason=dict(self._reasons),
            )

    def staleness(self) -> dict[str, float]:
        """``{ap_id: seconds since its latest accepted message}`` (inf: never)."""
        now = self._clock()
        with self._lock:
            return {
                a: (now - self._latest[a].at) if a in self._latest else float("inf")
                for a in self._ap_list
            }

    def latest(self, ap_id: str) -> CSIMessage | None:
        with self._lock:
            got = self._latest.get(ap_id)
        return None if got is None else got.msg

    def history(self, ap_id: str) -> list[CSIMessage]:
        """AP ``ap_id``'s last accepted messages, oldest first (increasing ``frame``)."""
        with self._lock:
            return list(self._history.get(ap_id, ()))

    def histories(self) -> dict[str, list[CSIMessage]]:
        """``{ap_id: history(ap_id)}`` for every AP with a message, taken at one instant."""
        with self._lock:
            return {a: list(d) for a, d in self._history.items()}

    def snapshot(self) -> CSISnapshot:
        """The latest CSI of every AP as one matrix (see :class:`CSISnapshot`)."""
        now = self._clock()
        with self._lock:
            latest = dict(self._latest)
            ues = tuple(self._ue_ids)
            aps = tuple(self._ap_list)
        n_l, n_u = len(aps), len(ues)
        n_ant = np.array([latest[a].msg.n_ant if a in latest else 0 for a in aps], dtype=np.int64)
        h = np.zeros((n_l, int(n_ant.max(initial=0)), n_u), dtype=np.complex128)
        valid = np.zeros((n_l, n_u), dtype=bool)
        noise = np.full(n_l, np.nan)
        snr = np.full((n_l, n_u), np.nan)
        frame = np.full(n_l, -1, dtype=np.int64)
        age = np.full(n_l, np.inf)
        est = []
        col = {u: j for j, u in enumerate(ues)}
        for i, a in enumerate(aps):
            got = latest.get(a)
            est.append(got.msg.est if got else "")
            if got is None:
                continue
            m = got.msg
            cols = [col[u] for u in m.ue_ids]
            h[i, : m.n_ant, cols] = m.h  # [K, n_ant] -> antenna x UE
            snr[i, cols] = m.snr_db
            noise[i], frame[i], age[i] = m.noise_var, m.frame, now - got.at
            valid[i, cols] = age[i] <= self.max_age_s
        return CSISnapshot(
            ap_ids=aps,
            ue_ids=ues,
            h=h,
            valid=valid,
            n_ant=n_ant,
            noise_var=noise,
            snr_db=snr,
            frame=frame,
            age_s=age,
            stale=age > self.max_age_s,
            est=tuple(est),
        )
