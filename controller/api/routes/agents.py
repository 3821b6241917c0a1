"""Agents: enrolment, heartbeats, tasks and stage submissions (signed), and operator views."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import FileResponse

from controller.api.deps import AgentId, EnrolToken, Operator, Service, SignedBody, json_body
from controller.api.openapi import ERRORS, json_request_body
from controller.api.schemas import AgentPublic
from controller.db import AgentRow, ExperimentRow
from controller.engine.board import StageKey, SubmitResult
from controller.engine.liveness import AgentInfo
from protocol.rounds import (
    STAGES,
    TASK_WAIT_MAX_S,
    EnrolRequest,
    EnrolResponse,
    Heartbeat,
    Task,
)

router = APIRouter(tags=["agents"], responses=ERRORS(401, 413, 422))
log = logging.getLogger(__name__)

EnrolBody = Annotated[EnrolRequest, Depends(json_body(EnrolRequest))]
HeartbeatBody = Annotated[Heartbeat, Depends(json_body(Heartbeat))]


@router.post(
    "/agents/enrol",
    response_model=EnrolResponse,
    responses=ERRORS(409),
    openapi_extra=json_request_body(EnrolRequest),
)
def enrol(service: Service, _: EnrolToken, req: EnrolBody) -> Any:
    """Enrol an agent's identity key (``X-Enrol-Token``: the enrolment token). Re-enrolling the
    same key is a no-op; a different key for a known id needs the operator to delete the agent
    first."""
    known = service.agents.get(req.agent_id)
    if known is not None and known.public_key != req.public_key:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"agent `{req.agent_id}` is enrolled with another key"
        )
    if known is None:
        with service.db.session() as s:
            s.add(AgentRow(id=req.agent_id, profile=req.profile, public_key=req.public_key))
        service.agents.add(AgentInfo(req.agent_id, req.profile, req.public_key))
    service.agents.touch(req.agent_id)
    return EnrolResponse(agent_id=req.agent_id, enrolled=True, message="ok")


def _public(service: Service, info: AgentInfo) -> AgentPublic:
    return AgentPublic(
        id=info.id,
        profile=info.profile,
        alive=service.agents.alive(info.id),
        last_seen_s_ago=round(time.time() - info.last_seen, 3),
        status=info.status,
    )


@router.get("/agents", response_model=list[AgentPublic])
def list_agents(service: Service, _: Operator) -> Any:
    return [_public(service, a) for a in service.agents.all()]


@router.get("/agents/{agent_id}", response_model=AgentPublic, responses=ERRORS(404))
def get_agent(agent_id: str, service: Service, _: Operator) -> Any:
    info = service.agents.get(agent_id)
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent `{agent_id}` not found")
    return _public(service, info)


@router.delete("/agents/{agent_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS(404))
def delete_agent(agent_id: str, service: Service, _: Operator) -> None:
    """Forget an agent (e.g. a board that lost its identity key, so that it can enrol a new
    one); its running tasks are not withdrawn, and it is refused from now on."""
    if service.agents.get(agent_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent `{agent_id}` not found")
    with service.db.session() as s:
        row = s.get(AgentRow, agent_id)
        if row is not None:
            s.delete(row)
    service.agents.remove(agent_id)


def _same_agent(path_id: str, signed_id: str) -> None:
    if path_id != signed_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "agents may act only for themselves")


@router.post(
    "/agents/{agent_id}/heartbeat",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS(403),
    openapi_extra=json_request_body(Heartbeat),
)
def heartbeat(agent_id: str, service: Service, signed: AgentId, beat: HeartbeatBody) -> None:
    _same_agent(agent_id, signed)
    service.agents.touch(agent_id, beat.status)


@router.get("/agents/{agent_id}/task", response_model=Task, responses=ERRORS(403))
async def task(
    agent_id: str,
    service: Service,
    signed: AgentId,
    wait_s: Annotated[float, Query(ge=0, le=TASK_WAIT_MAX_S)] = 0.0,
) -> Any:
    """The stage to do now; with ``wait_s``, wait that long for one (long polling), so that a
    stage reaches its agents within milliseconds of opening."""
    _same_agent(agent_id, signed)
    return await service.board.next_task(agent_id, wait_s)


_OPAQUE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The stage's result: JSON (train, evaluate) or raw bytes (the others).",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/experiments/{experiment_id}/rounds/{index}/{stage}",
    status_code=202,
    responses=ERRORS(404, 409),
    openapi_extra=_OPAQUE_BODY,
)
def submit(
    experiment_id: str,
    index: int,
    stage: str,
    attempt: int,
    service: Service,
    agent_id: AgentId,
    body: SignedBody,
) -> dict[str, str]:
    """An agent's result for one stage of a round (JSON or raw bytes, by stage). The body's
    bound is derived from the experiment's model size (docs/security.md)."""
    if stage not in STAGES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown stage `{stage}`")
    result = service.board.submit(StageKey(experiment_id, index, attempt, stage), agent_id, body)
    if result != SubmitResult.OK:
        log.info(
            "submission %.64s/%d/%s from %s refused: %s",
            experiment_id,
            index,
            stage,
            agent_id,
            result,
        )
        raise HTTPException(status.HTTP_409_CONFLICT, result)
    return {"status": "accepted"}


@router.get(
    "/experiments/{experiment_id}/models/{version}",
    responses={**ERRORS(403, 404), 200: {"content": {"application/octet-stream": {}}}},
    response_class=FileResponse,
)
def agent_model(experiment_id: str, version: int, service: Service, agent_id: AgentId) -> Any:
    """A committed model version, or the candidate the agents evaluate before a commit; only
    for the agents (UEs) of that experiment."""
    with service.db.session() as s:
        row = s.get(ExperimentRow, experiment_id)
        spec = row.spec if row is not None else None
    if spec is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"experiment `{experiment_id}` not found")
    # An agent of this experiment plays one of its UEs (same id), or holds one of its tasks.
    ues = {ue.get("id") for ue in spec.get("topology", {}).get("ues", [])}
    playing = service.board.task_for(agent_id).experiment_id == experiment_id
    if agent_id not in ues and not playing:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not an agent of this experiment")
    for path in (
        service.store.path(experiment_id, version),
        service.store.candidate_path(experiment_id, version),
    ):
        if path.exists():
            return FileResponse(path, media_type="application/octet-stream")
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"model version {version} not found")
