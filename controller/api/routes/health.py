"""Liveness, readiness, CSI status and counters."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from controller.api.deps import Operator, Service
from controller.api.openapi import ERRORS

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database is unavailable"}})
def readyz(service: Service) -> Any:
    """200 once the database answers; 503 otherwise (the reason is in the controller's log,
    not in the answer: anyone may ask)."""
    try:
        with service.db.session() as s:
            s.execute(text("SELECT 1"))
    except Exception:  # any database failure means not ready
        log.exception("readiness check: the database does not answer")
        return JSONResponse(status_code=503, content={"status": "unavailable"})
    return {"status": "ready", "uptime_s": round(time.time() - service.started_at, 1)}


@router.get("/api/v1/csi", responses=ERRORS(401))
def csi(service: Service, _: Operator) -> Any:
    """Per running experiment and AP: last frame, age, staleness, rejected-message counts."""
    return service.csi_status()


@router.get("/api/v1/status", responses=ERRORS(401))
def counters(service: Service, _: Operator) -> Any:
    """Refused and failed requests by kind, refused connections, the board's refusals."""
    return {
        "counters": dict(service.counters),
        "connections_refused": dict(service.connection_refusals),
        "board_rejected": service.board.rejected,
        "nonces_held": len(service.nonces),
    }
