"""The FastAPI application: ``create_app(settings)`` builds one around a ControllerService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from controller.api.routes import agents, experiments, health
from controller.service import ControllerService
from controller.settings import ControllerSettings, get_settings

__all__ = ["create_app"]

API_PREFIX = "/api/v1"


def create_app(settings: ControllerSettings | None = None) -> FastAPI:
    """A controller app; settings default to the environment's (``TESTBED_CONTROLLER_*``)."""
    service = ControllerService(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.startup()
        try:
            yield
        finally:
            service.shutdown()

    app = FastAPI(
        title="CF-mMIMO FL testbed controller",
        version="1",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.service = service
    app.include_router(health.router)
    app.include_router(experiments.router, prefix=API_PREFIX)
    app.include_router(agents.router, prefix=API_PREFIX)
    return app
