"""Dependencies of the routes: the service, operator and enrolment tokens, agent signatures.

Each credential is checked from the headers alone, before any body is read: FastAPI solves a
route's dependencies in order, and the routes that take a body read it in a dependency declared
after the credential's (:func:`json_body`), bounded by :mod:`controller.api.limits`.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from controller.service import ControllerService
from protocol.auth import (
    HEADER_DIGEST,
    HEADER_ID,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SignatureError,
    check_body,
    verify_headers,
)
from protocol.rounds import ENROL_TOKEN_HEADER

__all__ = [
    "UNAUTHORISED_AGENT",
    "AgentId",
    "EnrolToken",
    "Operator",
    "Service",
    "SignedBody",
    "get_service",
    "invalid_json",
    "json_body",
]

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="The operator's token.")
_enrol_header = APIKeyHeader(
    name=ENROL_TOKEN_HEADER,
    scheme_name=ENROL_TOKEN_HEADER,
    auto_error=False,
    description="The enrolment token.",
)
#: One answer for an unknown agent and for a bad signature (no enumeration of agent ids).
UNAUTHORISED_AGENT = "unknown agent or bad signature"
#: Verified against when the agent id is unknown, so both cases cost the same.
_NOBODY_KEY = base64.b64encode(bytes(32)).decode()
_M = TypeVar("_M", bound=BaseModel)


def get_service(request: Request) -> ControllerService:
    service: ControllerService = request.app.state.service
    return service


Service = Annotated[ControllerService, Depends(get_service)]


def _unauthorised(detail: str, scheme: str = "Bearer") -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": scheme},
    )


def _same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def require_operator(
    service: Service,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The operator's bearer token, checked in constant time."""
    if credentials is None:
        raise _unauthorised("missing bearer token")
    if not _same_secret(credentials.credentials, service.settings.token.get_secret_value()):
        raise _unauthorised("invalid bearer token")
    return "operator"


Operator = Annotated[str, Depends(require_operator)]


def require_enrol_token(
    service: Service, token: Annotated[str | None, Depends(_enrol_header)]
) -> None:
    """The enrolment token of the ``X-Enrol-Token`` header, checked in constant time."""
    expected = service.settings.enrol_token.get_secret_value()
    if token is None or not _same_secret(token, expected):
        service.counters["bad_enrolments"] += 1
        raise _unauthorised("missing or invalid enrolment token", scheme=ENROL_TOKEN_HEADER)


EnrolToken = Annotated[None, Depends(require_enrol_token)]


def _header(name: str) -> APIKeyHeader:
    """One security scheme per signature header, so the OpenAPI document names each."""
    return APIKeyHeader(name=name, scheme_name=name, auto_error=False)


async def require_agent(
    request: Request,
    service: Service,
    _id: Annotated[str | None, Depends(_header(HEADER_ID))],
    _ts: Annotated[str | None, Depends(_header(HEADER_TIMESTAMP))],
    _nonce: Annotated[str | None, Depends(_header(HEADER_NONCE))],
    _digest: Annotated[str | None, Depends(_header(HEADER_DIGEST))],
    _sig: Annotated[str | None, Depends(_header(HEADER_SIGNATURE))],
) -> str:
    """The id of the enrolled agent whose Ed25519 signature this request carries.

    The headers are verified first (identity, freshness, signature, nonce); only then is the
    body read (within the route's limit) and compared with the signed digest. Every failure
    gets the same answer; the log says which it was.
    """
    agent_id = request.headers.get(HEADER_ID, "")
    info = service.agents.get(agent_id)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        signed = verify_headers(
            info.public_key if info is not None else _NOBODY_KEY,
            dict(request.headers),
            request.method,
            path,
            window_s=service.settings.signature_window_s,
            not_before=service.started_at,
        )
        if info is None:
            raise SignatureError("unknown agent")
        if not service.nonces.first_use(agent_id, signed.nonce, signed.timestamp):
            raise SignatureError("nonce already used (replay)")
        check_body(signed, await request.body())
    except SignatureError as err:
        service.counters["bad_signatures"] += 1
        log.info("agent %.64r: refused (%s)", agent_id, err.reason)
        raise _unauthorised(UNAUTHORISED_AGENT, scheme="X-Agent-Signature") from None
    service.agents.touch(agent_id)
    return agent_id


AgentId = Annotated[str, Depends(require_agent)]


async def _signed_body(request: Request, _: AgentId) -> bytes:
    return await request.body()


#: The body of a signed request, read after (and only after) its signature verified.
SignedBody = Annotated[bytes, Depends(_signed_body)]


def json_body(
    model: type[_M], counter: str = "malformed_requests"
) -> Callable[[Request, ControllerService], Coroutine[Any, Any, _M]]:
    """A dependency that parses the body as ``model`` (declare it after the credential).

    A body that is not valid JSON for ``model`` gets 422 with FastAPI's error shape; nesting
    too deep for the parser is a 422 too, never a server error.
    """

    async def parse(request: Request, service: Service) -> _M:
        raw = await request.body()
        try:
            return model.model_validate_json(raw)
        except ValidationError as err:
            service.counters[counter] += 1
            detail = [
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in err.errors(include_input=False, include_url=False)
            ]
            raise HTTPException(422, detail) from None
        except (ValueError, RecursionError):
            service.counters[counter] += 1
            raise invalid_json() from None

    return parse


def invalid_json() -> HTTPException:
    """The 422 for a body that is not JSON (or nests too deep to parse)."""
    return HTTPException(
        422, [{"loc": ["body"], "msg": "body is not valid JSON", "type": "json_invalid"}]
    )
