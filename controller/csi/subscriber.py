"""ZeroMQ SUB client that feeds a :class:`CSIStore` from the AP cluster.

Connects to every AP's PUB endpoint (``ap_cluster.ClusterConfig.endpoints()``), subscribes to
the ``csi.`` topics and ingests every message in a background thread; ``stop()`` ends it
cleanly. Nothing a publisher sends can crash it or grow it without bound:

- the store counts bad messages by kind and never raises; any unexpected error in the loop is
  logged and counted in ``loop_errors``, and the loop carries on.
- libzmq itself drops a message part over :data:`MAX_PART_BYTES` (``ZMQ_MAXMSGSIZE``) before
  allocating it, and closes that publisher's connection. libzmq (4.3) treats that as a
  protocol error and never reconnects on its own, so the subscriber watches the socket's
  ``DISCONNECTED`` events and connects to the endpoint again (counted in ``reconnects``).
- a message of many parts is read one part at a time and only its first three are kept: the
  store rejects it as ``garbage`` whatever the count.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from types import TracebackType

import zmq
from zmq.utils.monitor import recv_monitor_message

from controller.csi.store import CSIStore
from protocol.csi import CSI_TOPIC_PREFIX, MAX_PAYLOAD_BYTES, MAX_TOPIC_BYTES

__all__ = ["MAX_PART_BYTES", "CSISubscriber"]

log = logging.getLogger(__name__)

#: Largest message part the socket takes, bytes: a topic and a payload at their limits. A payload
#: a little over its limit still reaches the store (counted ``oversize``); larger parts are
#: dropped by libzmq.
MAX_PART_BYTES = MAX_PAYLOAD_BYTES + MAX_TOPIC_BYTES
#: Messages ingested between two checks for ``stop()`` while the socket has more.
_BATCH = 1000
#: Parts of a message kept: one more than a CSI message has, so that the store sees it is wrong.
_PARTS_KEPT = 3


class CSISubscriber:
    """Subscribes to ``endpoints`` and ingests into ``store``.

    Args:
        endpoints: ZeroMQ endpoints to connect to, e.g. ``tcp://127.0.0.1:5600``.
        store: where messages go.
        poll_ms: how often the thread checks for ``stop()``, ms.

    Attributes:
        loop_errors: unexpected errors in the receive loop (each logged, then the loop goes on).
        reconnects: connections that closed (a publisher restarted, or sent an oversize part)
            and were connected again.
    """

    def __init__(self, endpoints: Iterable[str], store: CSIStore, *, poll_ms: int = 100) -> None:
        self.endpoints = list(dict.fromkeys(endpoints))
        self.store = store
        self._poll_ms = poll_ms
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.loop_errors = 0
        self.reconnects = 0

    def start(self) -> CSISubscriber:
        """Start the background thread (returns once the socket is connected)."""
        if self._thread is not None:
            raise RuntimeError("subscriber already started")
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="csi-subscriber", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)
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

    def _run(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        try:
            sock = ctx.socket(zmq.SUB)
        except zmq.ZMQError:
            log.exception("CSI subscriber: cannot open a ZeroMQ socket")
            self.loop_errors += 1
            self._ready.set()
            return
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 10000)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_PART_BYTES)
        sock.setsockopt(zmq.SUBSCRIBE, CSI_TOPIC_PREFIX.encode())
        monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        for ep in self.endpoints:
            self._connect(sock, ep)
        self._ready.set()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                try:
                    ready = dict(poller.poll(self._poll_ms))
                    if monitor in ready:
                        self._reconnect(sock, monitor)
                    if sock in ready:
                        self._drain(sock)
                except zmq.ContextTerminated:
                    break  # the process is shutting ZeroMQ down: nothing left to serve
                except Exception:  # keep serving: log, count, never die
                    self.loop_errors += 1
                    log.exception("CSI subscriber: error in the receive loop (carrying on)")
                    self._stop.wait(self._poll_ms / 1000)  # no hot loop on a lasting error
        finally:
            sock.disable_monitor()
            monitor.close(linger=0)
            sock.close(linger=0)

    def _connect(self, sock: zmq.Socket[bytes], ep: str) -> None:
        try:
            sock.connect(ep)
        except zmq.ZMQError:
            self.loop_errors += 1
            log.exception("CSI subscriber: cannot connect to %s", ep)

    def _drain(self, sock: zmq.Socket[bytes]) -> None:
        """Ingest up to ``_BATCH`` queued messages."""
        for _ in range(_BATCH):
            try:
                parts = [sock.recv(zmq.NOBLOCK)]
            except zmq.Again:
                return
            while sock.getsockopt(zmq.RCVMORE):
                part = sock.recv()  # the rest of a message is queued with its first part
                if len(parts) < _PARTS_KEPT:
                    parts.append(part)
            self.store.ingest_multipart(parts)

    def _reconnect(self, sock: zmq.Socket[bytes], monitor: zmq.Socket[bytes]) -> None:
        """Connect again to every endpoint whose connection the monitor saw close."""
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            ep = event["endpoint"].decode("utf-8", "replace")
            if event["event"] != zmq.EVENT_DISCONNECTED:
                continue
            if ep not in self.endpoints:
                log.warning("CSI subscriber: connection to unknown endpoint %s closed", ep)
                continue
            log.warning("CSI subscriber: connection to %s closed; connecting again", ep)
            with contextlib.suppress(zmq.ZMQError):  # already gone: libzmq dropped it
                sock.disconnect(ep)
            self._connect(sock, ep)
            self.reconnects += 1

    def __enter__(self) -> CSISubscriber:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
