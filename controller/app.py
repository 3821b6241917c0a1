"""The FastAPI application: ``create_app(settings)`` builds one around a ControllerService."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from controller import dashboard
from controller.api import openapi
from controller.api.limits import BodyLimits
from controller.api.routes import agents, events, experiments, health
from controller.metrics import CONTENT_TYPE, MetricsMiddleware
from controller.service import ControllerService
from controller.settings import ControllerSettings, get_settings

__all__ = ["create_app"]

API_PREFIX = "/api/v1"
log = logging.getLogger(__name__)


def create_app(settings: ControllerSettings | None = None) -> FastAPI:
    """A controller app; settings default to the environment's (``TESTBED_CONTROLLER_*``)."""
    service = ControllerService(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.startup()
        try:
            yield
        finally:
            service.shutdown(timeout_s=service.settings.graceful_shutdown_s)

    app = FastAPI(
        title="CF-mMIMO FL testbed controller",
        version="1",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.service = service
    app.include_router(health.router)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus metrics in the text exposition format (no credentials, no secrets:
        counts, durations and statuses only)."""
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE)

    app.include_router(experiments.router, prefix=API_PREFIX)
    app.include_router(agents.router, prefix=API_PREFIX)
    app.include_router(events.router, prefix=API_PREFIX)
    app.include_router(dashboard.router)
    app.mount("/dashboard/static", dashboard.static_files(), name="dashboard-static")
    app.add_middleware(
        MetricsMiddleware,
        metrics=service.metrics,
        templates=lambda: [*app.openapi()["paths"], "/docs", "/openapi.json"],
    )
    app.add_middleware(
        BodyLimits,
        limit_for=service.body_limit,
        body_timeout_s=service.settings.body_timeout_s,
        counters=service.counters,
        is_upload=service.is_upload,
        max_uploads=service.settings.max_concurrent_uploads,
    )

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        """The last resort: count, log with the traceback, answer 500 and carry on."""
        service.counters["server_errors"] += 1
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": "internal error (logged)"})

    async def http_error(request: Request, exc: Exception) -> Response:
        """FastAPI's answer, except that a 405 lists every method the path supports (Starlette
        lists only those of the first route whose path matched)."""
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request)
            exc = StarletteHTTPException(405, exc.detail, headers={"Allow": ", ".join(allowed)})
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_error)
    openapi.install(app)
    return app


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method of the routes whose path matches ``request``'s."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**request.scope, "method": "\x00"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)
