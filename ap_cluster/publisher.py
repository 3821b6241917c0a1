"""ZeroMQ PUB socket for CSI messages (topic ``csi.<ap_id>``, payload: ``protocol.csi``)."""

from __future__ import annotations

import zmq

from protocol.csi import CSIMessage, encode_csi_multipart

__all__ = ["CsiPublisher"]


class CsiPublisher:
    """Publishes :class:`~protocol.csi.CSIMessage` objects; never blocks the flowgraph.

    Args:
        endpoint: ZeroMQ endpoint, e.g. ``tcp://*:5600`` (bind) or ``tcp://host:5600``.
        bind: bind (the default: subscribers connect to the AP) or connect.
        hwm: send high-water mark; messages beyond it are dropped and counted.
    """

    def __init__(self, endpoint: str, *, bind: bool = True, hwm: int = 1000) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._sock = ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        if bind:
            self._sock.bind(endpoint)
        else:
            self._sock.connect(endpoint)
        self.endpoint = endpoint
        self.sent = 0
        self.dropped = 0

    def publish(self, msg: CSIMessage) -> None:
        """Send ``msg``; drop it (and count) if the socket would block."""
        self.send_raw(encode_csi_multipart(msg))

    def send_raw(self, frames: list[bytes]) -> None:
        """Send a multipart message as it is (also used to publish health)."""
        try:
            self._sock.send_multipart(frames, flags=zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:
            self.dropped += 1

    def close(self) -> None:
        self._sock.close(linger=0)
