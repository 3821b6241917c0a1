"""The channel each transport block sees: the controller's face of the air (DESIGN section 12).

The round plans from estimated CSI; the link layer then needs ``G_u(n)``, the combined gain of
UE ``u`` at the frame ``n`` a block is sent in (dimensionless, the quantity
``controller.csi.gain.combined_gain`` estimates). Two sources, one protocol:

- :class:`SimAir` (simulation): asks the AP cluster's air server (``ap_cluster.air``) for the
  simulated world's true gain over ZeroMQ (``protocol.air``); the controller never imports
  ``sim_backend``.
- :class:`MeasuredAir` (hardware, no truth oracle): the APs' own pilot measurements, the CSI
  message of each AP whose frame is nearest to ``n``.

With ``link.mode: iq`` the update's bytes cross the PHY too: :class:`SimAir` is also a
:class:`BurstAir`, whose :meth:`~SimAir.carry` sends transport blocks through the air server's
PHY (``protocol.air.CarryRequest``) and returns what decoded.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np
import zmq

from controller.csi.gain import message_snr_per_watt
from controller.csi.store import CSIStore
from protocol.air import (
    TB_BYTES,
    AirProtocolError,
    AirRequest,
    CarryRequest,
    decode_carry_reply,
    decode_reply,
    encode_carry_request,
    encode_request,
)
from protocol.arrays import NDArrayFloat, NDArrayInt

__all__ = ["AirChannel", "AirUnavailableError", "BurstAir", "MeasuredAir", "SimAir"]


class AirChannel(Protocol):
    """Combined gains of UEs at given frames."""

    def true_gains(self, ue_ids: Sequence[str], frames: NDArrayInt) -> NDArrayFloat:
        """``[U, K]`` float64 dimensionless ``G`` of ``ue_ids[i]`` at ``frames[i, k]``.

        ``frames``: ``[U, K]`` int frame indices (>= 0), ``U = len(ue_ids)``.
        """
        ...


@runtime_checkable
class BurstAir(Protocol):
    """The PHY between a UE and the APs: transport blocks in, what decoded out."""

    def carry(
        self, ue_id: str, mcs: int, blocks: bytes, snr_db: NDArrayFloat, seed: Sequence[int]
    ) -> tuple[list[bool], bytes]:
        """Send ``K = len(snr_db)`` blocks (``blocks``: ``K * TB_BYTES`` bytes) of ``ue_id`` at
        the PHY's scheme ``mcs``, block ``k`` at ``snr_db[k]`` dB; ``seed`` keys the channel.

        Returns ``(decoded [K], bytes)``: per block whether it decoded, and the blocks as
        received (zeros where not decoded).
        """
        ...


class AirUnavailableError(RuntimeError):
    """The air could not answer (server down or slow, or it refused the request)."""


def _check_frames(ue_ids: Sequence[str], frames: NDArrayInt) -> NDArrayInt:
    fr = np.asarray(frames)
    if fr.ndim != 2 or fr.shape[0] != len(ue_ids) or fr.shape[1] < 1:
        raise ValueError(f"`frames` must be [U={len(ue_ids)}, K>=1], got shape {fr.shape}.")
    if not np.issubdtype(fr.dtype, np.integer):
        raise ValueError(f"`frames` must be integers, got {fr.dtype}.")
    if fr.min() < 0:
        raise ValueError(f"`frames` must be >= 0, got {fr.min()}.")
    return fr.astype(np.int64)


class SimAir:
    """REQ client of the AP cluster's simulated air (``ClusterConfig.air_endpoint()``).

    One request per :meth:`true_gains` call. A reply that does not come within ``timeout_s``
    raises :class:`AirUnavailableError` naming the endpoint; the socket is then replaced by a
    fresh one (a REQ socket that lost its reply accepts no further request), so the next call
    works once the server is back. Thread-safe: calls are serialised.

    Args:
        endpoint: e.g. ``tcp://127.0.0.1:5700``.
        timeout_s: how long one call waits for its reply, s.
    """

    def __init__(
        self, endpoint: str, *, timeout_s: float = 10.0, carry_timeout_s: float = 120.0
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"`timeout_s` must be positive, got {timeout_s}.")
        if not carry_timeout_s > 0:
            raise ValueError(f"`carry_timeout_s` must be positive, got {carry_timeout_s}.")
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.carry_timeout_s = carry_timeout_s
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._lock = threading.Lock()
        self._sock: zmq.Socket[bytes] | None = self._open()

    def _open(self) -> zmq.Socket[bytes]:
        sock = self._ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDTIMEO, max(1, int(self.timeout_s * 1000)))
        sock.connect(self.endpoint)
        return sock

    def true_gains(self, ue_ids: Sequence[str], frames: NDArrayInt) -> NDArrayFloat:
        """``[U, K]`` true gains (see :class:`AirChannel`); raises :class:`AirUnavailableError`."""
        fr = _check_frames(ue_ids, frames)
        try:
            payload = encode_request(AirRequest(ue_ids=list(ue_ids), frames=fr.tolist()))
        except ValueError as err:  # over the protocol's limits
            raise ValueError(f"`frames`/`ue_ids` exceed the air protocol's limits: {err}") from None
        with self._lock:
            if self._sock is None:
                raise AirUnavailableError(f"air client of {self.endpoint} is closed")
            raw = self._exchange(self._sock, payload)
        try:
            reply = decode_reply(raw)
        except AirProtocolError as err:
            raise AirUnavailableError(f"air at {self.endpoint}: malformed reply: {err}") from None
        if reply.error is not None:
            raise AirUnavailableError(f"air at {self.endpoint}: {reply.error}")
        assert reply.gains is not None
        if [len(r) for r in reply.gains] != [fr.shape[1]] * fr.shape[0]:
            raise AirUnavailableError(f"air at {self.endpoint}: reply does not match the request")
        return np.asarray(reply.gains, dtype=np.float64)

    def carry(
        self, ue_id: str, mcs: int, blocks: bytes, snr_db: NDArrayFloat, seed: Sequence[int]
    ) -> tuple[list[bool], bytes]:
        """See :class:`BurstAir`; raises :class:`AirUnavailableError`."""
        snr = [float(x) for x in np.asarray(snr_db, dtype=np.float64).ravel()]
        try:
            req = CarryRequest(ue_id=ue_id, mcs=mcs, snr_db=snr, seed=[int(x) for x in seed])
            frames = encode_carry_request(req, blocks)
        except (ValueError, AirProtocolError) as err:
            raise ValueError(f"carry request refused before sending: {err}") from None
        with self._lock:
            if self._sock is None:
                raise AirUnavailableError(f"air client of {self.endpoint} is closed")
            raw = self._exchange_frames(self._sock, frames, self.carry_timeout_s)
        try:
            reply, data = decode_carry_reply(raw, len(snr))
        except AirProtocolError as err:
            raise AirUnavailableError(f"air at {self.endpoint}: malformed reply: {err}") from None
        if reply.error is not None:
            raise AirUnavailableError(f"air at {self.endpoint}: {reply.error}")
        if reply.decoded is None or len(data) != len(snr) * TB_BYTES:
            raise AirUnavailableError(f"air at {self.endpoint}: reply does not match the request")
        return list(reply.decoded), data

    def _exchange(self, sock: zmq.Socket[bytes], payload: bytes) -> bytes:
        """Send and wait for the reply; on timeout replace the socket and raise."""
        return self._exchange_frames(sock, [payload], self.timeout_s)[0]

    def _exchange_frames(
        self, sock: zmq.Socket[bytes], frames: list[bytes], timeout_s: float
    ) -> list[bytes]:
        try:
            sock.send_multipart(frames)
            if sock.poll(int(timeout_s * 1000), zmq.POLLIN):
                return sock.recv_multipart()
        except zmq.ZMQError:
            pass
        sock.close(linger=0)
        self._sock = self._open()
        raise AirUnavailableError(f"air at {self.endpoint} did not answer within {timeout_s:g} s")

    def close(self) -> None:
        """Close the socket; later calls raise :class:`AirUnavailableError`."""
        with self._lock:
            if self._sock is not None:
                self._sock.close(linger=0)
                self._sock = None

    def __enter__(self) -> SimAir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MeasuredAir:
    """The APs' pilot measurements as the air (hardware: there is no true channel to ask).

    ``G_u(n) = noise_power_w * sum_l ||h^_{u,l}||^2 / noise_var_l`` (as
    ``controller.csi.gain.combined_gain``), each AP ``l`` contributing the accepted CSI message
    of its history (``CSIStore.history``) whose frame is nearest to ``n`` (ties: the earlier
    one); an AP without messages, or whose nearest message does not name ``u``, contributes 0.
    The estimate's own error is included (an LS estimate adds ``N sigma^2 / (p tau_p)``).

    Args:
        store: the controller's CSI store (its per-AP history).
        noise_power_w: thermal noise over the band ``N0 B``, W (``protocol.physics``).
    """

    def __init__(self, store: CSIStore, noise_power_w: float) -> None:
        if not (np.isfinite(noise_power_w) and noise_power_w > 0):
            raise ValueError(f"`noise_power_w` must be finite and positive, got {noise_power_w}.")
        self.store = store
        self.noise_power_w = float(noise_power_w)

    def true_gains(self, ue_ids: Sequence[str], frames: NDArrayInt) -> NDArrayFloat:
        """``[U, K]`` measured gains at ``frames`` (see :class:`AirChannel`)."""
        fr = _check_frames(ue_ids, frames)
        out = np.zeros(fr.shape, dtype=np.float64)
        rows = np.arange(len(ue_ids))[:, None]
        for msgs in self.store.histories().values():
            if not msgs:
                continue
            at = np.array([m.frame for m in msgs], dtype=np.int64)  # increasing
            table = message_snr_per_watt(msgs, ue_ids)  # [M, U]
            out += table[_nearest(at, fr), rows]
        return self.noise_power_w * out


def _nearest(at: NDArrayInt, frames: NDArrayInt) -> NDArrayInt:
    """Index into increasing ``at`` [M] of the entry nearest each of ``frames`` (ties: lower)."""
    hi = np.clip(np.searchsorted(at, frames, side="left"), 0, at.size - 1)
    lo = np.clip(hi - 1, 0, at.size - 1)
    take_lo = np.abs(frames - at[lo]) <= np.abs(at[hi] - frames)
    return np.where(take_lo, lo, hi)
