"""The live dashboard: ``/dashboard`` (one page, our own JavaScript and CSS, no CDN).

The page asks for the operator's token in a login form and keeps it in the browser's
``sessionStorage`` (never in a URL); it lists the experiments with start and stop buttons and
follows the chosen one's event stream (``GET /api/v1/experiments/{id}/events`` through
``fetch``, so the token travels in the ``Authorization`` header, reconnecting with
``Last-Event-ID``). The static files hold no data: everything shown comes through the
authenticated API.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "router", "static_files"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

router = APIRouter(tags=["dashboard"])

#: Nothing of the page may come from elsewhere (no CDN, no inline script).
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@router.get("/dashboard", include_in_schema=False)
def dashboard() -> FileResponse:
    """The dashboard page."""
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html",
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"},
    )


def static_files() -> StaticFiles:
    """The page's script and style sheet (``/dashboard/static``)."""
    return StaticFiles(directory=STATIC_DIR)
