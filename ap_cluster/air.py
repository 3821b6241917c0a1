"""The simulated air's server: true channel gains on a ZeroMQ REP socket (sim mode only).

The AP cluster already rebuilds the experiment's :class:`sim_backend.World` in every process;
this server answers the controller's :class:`protocol.air.AirRequest` with that world's true
combined gains (``sim_backend.true_gains``), so the controller, which never imports
``sim_backend``, gets the channel each transport block sees over the wire. With
``link.mode: iq`` it also answers :class:`protocol.air.CarryRequest`: the blocks of an update
go through the PHY (:class:`ap_cluster.phy.carrier.BurstCarrier`) and come back as they
decoded. ``testbed ap serve`` runs one when the cluster file has an ``air`` endpoint.

It never dies on a request: a malformed one, an unknown UE id or a request over the limits is
counted in ``rejected``, logged, and answered ``{"v": 1, "gains": null, "error": "..."}``
naming the problem. ``sim_backend`` loads when a server is built, not on import, so a uhd
cluster can import :class:`AirServerError` without it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
import zmq

from protocol.air import (
    TB_BYTES,
    AirProtocolError,
    AirReply,
    CarryReply,
    decode_carry_request,
    decode_request,
    encode_carry_reply,
    encode_reply,
)
from protocol.spec import ExperimentSpec

if TYPE_CHECKING:
    from ap_cluster.phy.carrier import BurstCarrier
    from sim_backend import World

__all__ = ["AirServer", "AirServerError"]

_log = logging.getLogger(__name__)

#: Frames of fading one idle step builds at most (16 blocks of 256: a few ms per AP).
_CATCH_UP_FRAMES = 4096
#: The furthest past the APs' frame the idle server builds (a bound whatever a request asks).
_MAX_AHEAD_FRAMES = 1 << 18
#: Fading kept whole per AP, B: what the idle server built ahead is read, not recomputed (a
#: round of 20 UEs on 2-antenna APs asks for about 360 blocks of 164 KB each).
_FADING_CACHE_BYTES = 64 << 20


class AirServerError(RuntimeError):
    """The air server could not start (e.g. its endpoint cannot be bound)."""


class AirServer:
    """REP server of the simulated air in a daemon thread.

    Args:
        world_or_spec: the world to answer from, or the spec to build it from.
        bind: ZeroMQ endpoint to bind, e.g. ``tcp://*:5700``.
        poll_ms: how often the thread checks for ``stop()``, ms.

    Attributes:
        served: requests answered with gains.
        carried: carry requests answered (blocks through the PHY).
        rejected: requests answered with an error.
        endpoint: the bound endpoint (``bind`` as ZeroMQ resolved it), once started.
        caught_up: the frame up to which the idle server has built the world's fading.
        ahead: how far past the APs' frame requests have reached (the modelled time of a
            round can run ahead of the wall clock); the idle server builds that far ahead.
    """

    def __init__(
        self, world_or_spec: World | ExperimentSpec, bind: str, *, poll_ms: int = 100
    ) -> None:
        from sim_backend import World

        self.world = (
            world_or_spec
            if isinstance(world_or_spec, World)
            else World(world_or_spec, fading_cache_bytes=_FADING_CACHE_BYTES)
        )
        self.bind = bind
        self._poll_ms = poll_ms
        self._ue_index = {u: i for i, u in enumerate(self.world.cfg.ue_ids)}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._bind_error: str | None = None
        self._thread: threading.Thread | None = None
        self.endpoint: str | None = None
        self.served = 0
        self.carried = 0
        self.rejected = 0
        self._carrier: BurstCarrier | None = None
        self.caught_up = 0
        self.ahead = 0
        self._horizon = 0

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> AirServer:
        """Bind and serve in a daemon thread; raise :class:`AirServerError` if binding fails."""
        if self._thread is not None:
            raise RuntimeError("air server already started")
        self._stop.clear()
        self._ready.clear()
        self._bind_error = None
        self._thread = threading.Thread(target=self._run, name="air-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise AirServerError(f"air server on {self.bind} did not start within 10 s")
        if self._bind_error is not None:
            self._thread.join(1.0)
            self._thread = None
            raise AirServerError(f"air: cannot bind {self.bind}: {self._bind_error}")
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> AirServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------------------
    def advance_to(self, frame: int) -> None:
        """The APs have reached ``frame``: build the world's fading up to ``frame + ahead``
        while idle.

        The Gauss-Markov fading is built in frame order and kept, so without this the first
        request of a run (for frames tens of thousands in) builds it all from frame 0, and
        every later one builds what elapsed since the one before, both inside the round.
        Only speed changes: the gains are bit-identical in any order.
        """
        self._horizon = max(self._horizon, int(frame))

    def _catch_up(self) -> None:
        """One idle step towards the horizon (at most ``_CATCH_UP_FRAMES``, so that a request
        arriving meanwhile waits a few ms at most)."""
        goal = self._horizon + self.ahead if self._horizon > 0 else 0
        target = min(goal, self.caught_up + _CATCH_UP_FRAMES)
        if target <= self.caught_up:
            return
        try:
            for ap in range(self.world.cfg.n_aps):
                self.world.small_scale(ap, target, 1)
        except Exception:  # an optimisation only: requests compute what they need anyway
            _log.exception("air: building the fading up to frame %d failed", target)
            self._horizon = self.caught_up
            return
        self.caught_up = target

    def _run(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        sock = ctx.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(self.bind)
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as err:
            self._bind_error = str(err)
            sock.close(linger=0)
            self._ready.set()
            return
        self._ready.set()
        _log.info("air server on %s", self.endpoint)
        try:
            while not self._stop.is_set():
                if not sock.poll(self._poll_ms, zmq.POLLIN):
                    self._catch_up()
                    continue
                frames = sock.recv_multipart()
                if len(frames) == 2:
                    sock.send_multipart(self.handle_carry(frames))
                else:
                    sock.send(self.handle(frames))
        finally:
            sock.close(linger=0)

    def handle(self, frames: Sequence[bytes]) -> bytes:
        """The reply payload to one request (``frames``: its ZeroMQ frames). Never raises."""
        try:
            if len(frames) != 1:
                raise AirProtocolError("payload", f"expected 1 message frame, got {len(frames)}")
            reply = AirReply(gains=self._gains(frames[0]))
        except AirProtocolError as err:
            return self._reject(str(err))
        except Exception as err:  # a bug must not take the server down: count, log, answer
            _log.exception("air request failed")
            return self._reject(f"internal error: {type(err).__name__}: {err}")
        self.served += 1
        return encode_reply(reply)

    def handle_carry(self, frames: Sequence[bytes]) -> list[bytes]:
        """The reply frames to one carry request. Never raises."""
        try:
            req, data = decode_carry_request(frames)
            if req.ue_id not in self._ue_index:
                raise AirProtocolError("ue_id", f"unknown UE `{req.ue_id}`")
            if self._carrier is None:
                from ap_cluster.phy.carrier import BurstCarrier

                self._carrier = BurstCarrier()
            blocks = [data[k * TB_BYTES : (k + 1) * TB_BYTES] for k in range(len(req.snr_db))]
            try:
                got = self._carrier.carry(blocks, req.mcs, req.snr_db, req.seed)
            except ValueError as err:  # the scheme is not the PHY's
                raise AirProtocolError("mcs", str(err)) from None
        except AirProtocolError as err:
            return encode_carry_reply(CarryReply(error=self._rejected(str(err))))
        except Exception as err:
            _log.exception("carry request failed")
            message = self._rejected(f"internal error: {type(err).__name__}: {err}")
            return encode_carry_reply(CarryReply(error=message))
        self.carried += 1
        out = b"".join(b if b is not None else bytes(TB_BYTES) for b in got.blocks)
        return encode_carry_reply(CarryReply(decoded=got.decoded, rx_s=got.rx_s), out)

    def _gains(self, payload: bytes) -> list[list[float]]:
        from sim_backend import true_gains

        req = decode_request(payload)
        unknown = [u for u in req.ue_ids if u not in self._ue_index]
        if unknown:
            known = list(self._ue_index)
            more = "" if len(known) <= 20 else f" ... ({len(known)} in all)"
            raise AirProtocolError(
                "ue_ids", f"unknown UE `{unknown[0]}`; known: {known[:20]}{more}"
            )
        counts = np.array([len(row) for row in req.frames], dtype=np.int64)
        ues = np.repeat(np.array([self._ue_index[u] for u in req.ue_ids], dtype=np.int64), counts)
        flat = np.fromiter(
            (f for row in req.frames for f in row), dtype=np.int64, count=int(counts.sum())
        )
        g = true_gains(self.world, ues, flat[:, None])[:, 0]
        if self._horizon > 0 and flat.size:
            reach = int(flat.max()) - self._horizon
            self.ahead = min(_MAX_AHEAD_FRAMES, max(self.ahead, reach))
        return [part.tolist() for part in np.split(g, np.cumsum(counts)[:-1])]

    def _rejected(self, message: str) -> str:
        self.rejected += 1
        _log.warning("air request rejected: %s", message)
        return message

    def _reject(self, message: str) -> bytes:
        return encode_reply(AirReply(error=self._rejected(message)))
