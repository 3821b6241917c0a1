"""Liveness, readiness, CSI status and counters."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from controller.api.deps import Operator, Service

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(service: Service) -> Any:
    try:
        with service.db.session() as s:
            s.execute(text("SELECT 1"))
    except Exception as err:  # any database failure means not ready
        return JSONResponse(status_code=503, content={"status": "unavailable", "error": str(err)})
    return {"status": "ready", "uptime_s": round(time.time() - service.started_at, 1)}


@router.get("/api/v1/csi")
def csi(service: Service, _: Operator) -> Any:
    """Per-AP CSI status: last frame, age, staleness, and counts of rejected messages."""
    return service.csi_status()


@router.get("/api/v1/status")
def counters(service: Service, _: Operator) -> Any:
    return {"counters": service.counters, "board_rejected": service.board.rejected}
