"""Request body limits, enforced before and while a body is read (pure ASGI middleware).

Each request gets the body limit of its route from :meth:`ControllerService.body_limit`: small
for enrolment, heartbeats and reports, the spec limit for ``POST /experiments``, and for stage
uploads a bound derived from the experiment's model size. A declared ``Content-Length`` above
the limit is answered 413 before a byte of the body is read; a chunked body is counted as it
arrives and cut off at the limit (413, or the connection is closed when the answer has started).
A body that does not arrive within ``body_timeout_s`` is answered 408. Every refusal is counted.

Model-sized uploads are also limited in number: at most ``max_uploads`` are read at once, the
others wait (with their headers read, before a byte of their body is) for a slot. A signed
upload must be read whole to check its digest before the board takes it, so without this bound
the controller's memory would grow with the number of agents uploading at the same moment;
with it, memory stays O(``max_uploads`` x model size).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimits"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Refused(Exception):  # noqa: N818 (control flow, not an error kind)
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail


class BodyLimits:
    """Wraps an ASGI app; ``limit_for(method, path)`` gives a route's body limit in bytes."""

    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[str, str], int],
        body_timeout_s: float,
        counters: dict[str, int],
        is_upload: Callable[[str, str], bool] | None = None,
        max_uploads: int = 8,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.body_timeout_s = body_timeout_s
        self.counters = counters
        self.is_upload = is_upload
        self._upload_slots = asyncio.Semaphore(max_uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            self.counters["oversized_requests"] += 1
            await _answer(send, 413, f"body of {declared} bytes exceeds the limit of {limit}")
            return
        if self.is_upload is not None and self.is_upload(scope["method"], scope["path"]):
            async with self._upload_slots:
                await self._limited(scope, receive, send, limit)
        else:
            await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app with the body counted against ``limit`` and the body timeout."""
        started = False
        received = 0
        deadline = time.monotonic() + self.body_timeout_s

        async def limited_receive() -> Message:
            nonlocal received
            remaining = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.001))
            except TimeoutError:
                raise _Refused(408, f"body not received within {self.body_timeout_s:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _Refused(413, f"body exceeds the limit of {limit} bytes")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _Refused as refused:
            key = "oversized_requests" if refused.status == 413 else "slow_requests"
            self.counters[key] += 1
            log.warning("%s %s refused: %s", scope["method"], scope["path"], refused.detail)
            if not started:
                await _answer(send, refused.status, refused.detail)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
