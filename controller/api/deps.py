"""Dependencies of the routes: the service, operator authentication, agent signatures."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller.service import ControllerService
from protocol.auth import HEADER_ID, SignatureError, verify_request

__all__ = ["AgentId", "Operator", "Service", "get_service"]

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False)


def get_service(request: Request) -> ControllerService:
    service: ControllerService = request.app.state.service
    return service


Service = Annotated[ControllerService, Depends(get_service)]


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_operator(
    service: Service,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The operator's bearer token, checked in constant time."""
    if credentials is None:
        raise _unauthorised("missing bearer token")
    if not hmac.compare_digest(credentials.credentials.encode(), service.settings.token.encode()):
        raise _unauthorised("invalid bearer token")
    return "operator"


Operator = Annotated[str, Depends(require_operator)]


async def require_agent(request: Request, service: Service) -> str:
    """The id of the enrolled agent whose Ed25519 signature this request carries."""
    agent_id = request.headers.get(HEADER_ID, "")
    info = service.agents.get(agent_id)
    if info is None:
        service.counters["bad_signatures"] += 1
        raise _unauthorised(f"agent `{agent_id}` is not enrolled")
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    body = await request.body()
    try:
        verify_request(
            info.public_key,
            dict(request.headers),
            request.method,
            path,
            body,
            window_s=service.settings.signature_window_s,
        )
    except SignatureError as err:
        service.counters["bad_signatures"] += 1
        log.warning("agent %s: bad signature (%s)", agent_id, err.reason)
        raise _unauthorised(f"bad agent signature: {err.reason}") from None
    service.agents.touch(agent_id)
    return agent_id


AgentId = Annotated[str, Depends(require_agent)]
