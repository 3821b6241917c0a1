"""ZeroMQ SUB client that feeds a :class:`CSIStore` from the AP cluster.

Connects to every AP's PUB endpoint (``ap_cluster.ClusterConfig.endpoints()``), subscribes to
the ``csi.`` topics and ingests every message in a background thread; ``stop()`` ends it
cleanly. Nothing a publisher sends can crash it: the store counts bad messages, and any
unexpected error in the loop is counted in ``loop_errors``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from types import TracebackType

import zmq

from controller.csi.store import CSIStore
from protocol.csi import CSI_TOPIC_PREFIX

__all__ = ["CSISubscriber"]


class CSISubscriber:
    """Subscribes to ``endpoints`` and ingests into ``store``.

    Args:
        endpoints: ZeroMQ endpoints to connect to, e.g. ``tcp://127.0.0.1:5600``.
        store: where messages go.
        poll_ms: how often the thread checks for ``stop()``, ms.
    """

    def __init__(self, endpoints: Iterable[str], store: CSIStore, *, poll_ms: int = 100) -> None:
        self.endpoints = list(endpoints)
        self.store = store
        self._poll_ms = poll_ms
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.loop_errors = 0

    def start(self) -> CSISubscriber:
        """Start the background thread (returns once the socket is connected)."""
        if self._thread is not None:
            raise RuntimeError("subscriber already started")
        self._stop.clear()
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
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 10000)
        sock.setsockopt(zmq.SUBSCRIBE, CSI_TOPIC_PREFIX.encode())
        for ep in self.endpoints:
            sock.connect(ep)
        self._ready.set()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                try:
                    if not poller.poll(self._poll_ms):
                        continue
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self.store.ingest_multipart(frames)
                except Exception:  # keep serving: count, never die
                    self.loop_errors += 1
        finally:
            sock.close(linger=0)

    def __enter__(self) -> CSISubscriber:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
