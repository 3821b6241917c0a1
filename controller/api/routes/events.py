"""An experiment's event stream: ``GET /experiments/{id}/events`` (server-sent events).

Each event has its database id as the SSE ``id``; a client that reconnects with the
``Last-Event-ID`` header (or ``?after=N``) is sent every event after it, from the database, so
it misses nothing across a dropped connection or a controller restart. The stream polls the
database while this process publishes (and every second regardless: another controller process
may share the database), sends a comment every 15 s to keep proxies from closing it, and ends
when the client goes away or the controller shuts down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from controller.api.deps import Operator, Service
from controller.api.openapi import ERRORS
from controller.db import ExperimentRow
from controller.events import READ_LIMIT, format_sse

router = APIRouter(prefix="/experiments", tags=["events"], responses=ERRORS(401, 404, 422))

#: How often a stream looks for new events when this process published some, s.
_POLL_S = 0.1
#: ... and when it did not (another process may share the database), s.
_IDLE_POLL_S = 1.0
_KEEP_ALIVE_S = 15.0


def _start_id(last_event_id: str | None, after: int | None) -> int:
    if last_event_id is None or not last_event_id.strip():
        return after or 0
    try:
        value = int(last_event_id)
    except ValueError:
        value = -1
    if value < 0:
        raise HTTPException(
            422,
            [
                {
                    "loc": ["header", "Last-Event-ID"],
                    "msg": f"must be a non-negative event id, got {last_event_id[:40]!r}",
                    "type": "value_error",
                }
            ],
        )
    return value


@router.get(
    "/{experiment_id}/events",
    operation_id="streamEvents",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The event stream"}},
)
async def stream_events(
    experiment_id: str,
    request: Request,
    service: Service,
    _: Operator,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
    after: Annotated[int | None, Query(ge=0, description="Resume after this event id.")] = None,
) -> Any:
    """The experiment's events from the first (or after ``Last-Event-ID``), then live."""
    start = _start_id(last_event_id, after)
    with service.db.session() as s:
        if s.get(ExperimentRow, experiment_id) is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"experiment `{experiment_id}` not found"
            )
    events = service.events

    async def body() -> AsyncIterator[str]:
        last, quiet, seen = start, 0.0, -1
        yield "retry: 2000\n\n"
        while not service.stopping.is_set() and not await request.is_disconnected():
            published = events.published
            rows = []
            if published != seen or quiet >= _IDLE_POLL_S:
                rows = await run_in_threadpool(events.after, experiment_id, last)
                seen = published if len(rows) < READ_LIMIT else -1  # more may wait
            for event_id, kind, data in rows:
                yield format_sse(event_id, kind, data)
                last = event_id
            if rows:
                quiet = 0.0
                continue
            await asyncio.sleep(_POLL_S)
            quiet += _POLL_S
            if quiet >= _KEEP_ALIVE_S:
                yield ": keep-alive\n\n"
                quiet = 0.0

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
