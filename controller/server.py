"""The controller under uvicorn, with the connection-level limits uvicorn lacks.

uvicorn bounds idle keep-alive connections and in-flight requests, but not the time a client
may take to send its request headers, nor the number of open connections: a client that sends
half a header holds its connection (and a file descriptor) forever. :func:`uvicorn_config` runs
the app on :class:`GuardedH11Protocol`, which closes a connection whose headers are not complete
``header_timeout_s`` after it opened (or after its previous response), and closes at once any
connection beyond ``max_connections``. Body size and body timeouts are the app's
(:mod:`controller.api.limits`); TLS is uvicorn's own (docs/security.md).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from controller.settings import ControllerSettings

__all__ = ["GuardedH11Protocol", "guarded_protocol", "raise_open_file_limit", "uvicorn_config"]

log = logging.getLogger(__name__)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout and a connection limit (class attributes,
    set by :func:`guarded_protocol`)."""

    header_timeout_s: float = 10.0
    max_connections: int = 1024
    refused: dict[str, int] = {"connections": 0, "header_timeouts": 0}  # noqa: RUF012

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.refused["connections"] += 1
            transport.abort()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_overdue)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_overdue(self) -> None:
        self._header_timer = None
        # IDLE: the current request's headers are not complete (or no request came at all).
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.refused["header_timeouts"] += 1
            self.transport.close()


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` subclass with these limits."""
    counters: dict[str, int] = {"connections": 0, "header_timeouts": 0}
    return type(
        "GuardedH11ProtocolWithLimits",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": header_timeout_s,
            "max_connections": max_connections,
            "refused": counters,
        },
    )


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft open-file limit towards ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def uvicorn_config(
    app: Any,
    settings: ControllerSettings,
    host: str | None = None,
    port: int | None = None,
    log_level: str = "info",
    **extra: Any,
) -> uvicorn.Config:
    """uvicorn's configuration for the controller app, with every limit of ``settings``.

    ``extra`` passes through to :class:`uvicorn.Config` (e.g. ``ssl_certfile``).
    """
    protocol = guarded_protocol(settings.header_timeout_s, settings.max_connections)
    # The app's service counts the protocol's refusals with its own.
    service = getattr(getattr(app, "state", None), "service", None)
    if service is not None:
        service.connection_refusals = protocol.refused
    raise_open_file_limit(2 * settings.max_connections + 256)
    return uvicorn.Config(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_level=log_level,
        http=protocol,
        timeout_keep_alive=int(max(1, settings.keep_alive_s)),
        timeout_graceful_shutdown=int(max(1, settings.graceful_shutdown_s)),
        h11_max_incomplete_event_size=16 * 1024,
        **extra,
    )
