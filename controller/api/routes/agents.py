"""Agents: enrolment, heartbeats, tasks and stage submissions (signed), and operator views."""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse

from controller.api.deps import AgentId, Operator, Service
from controller.api.schemas import AgentPublic
from controller.db import AgentRow, ExperimentRow
from controller.engine.board import StageKey, SubmitResult
from controller.engine.liveness import AgentInfo
from protocol.rounds import STAGES, EnrolRequest, EnrolResponse, Heartbeat, Task

router = APIRouter(tags=["agents"])
log = logging.getLogger(__name__)

_MAX_BODY = 512 * 1024 * 1024


@router.post("/agents/enrol", response_model=EnrolResponse)
def enrol(req: EnrolRequest, service: Service) -> Any:
    """Enrol an agent's identity key, with the enrolment token. Re-enrolling the same key is a
    no-op; a different key for a known id needs the operator to delete the agent first."""
    if not hmac.compare_digest(req.enrol_token.encode(), service.settings.enrol_token.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid enrolment token")
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


@router.get("/agents/{agent_id}", response_model=AgentPublic)
def get_agent(agent_id: str, service: Service, _: Operator) -> Any:
    info = service.agents.get(agent_id)
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent `{agent_id}` not found")
    return _public(service, info)


def _same_agent(path_id: str, signed_id: str) -> None:
    if path_id != signed_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "agents may act only for themselves")


@router.post("/agents/{agent_id}/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
async def heartbeat(agent_id: str, request: Request, service: Service, signed: AgentId) -> None:
    _same_agent(agent_id, signed)
    try:
        beat = Heartbeat.model_validate_json(await request.body())
    except ValueError:
        service.counters["malformed_requests"] += 1
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "malformed heartbeat") from None
    service.agents.touch(agent_id, beat.status)


@router.get("/agents/{agent_id}/task", response_model=Task)
def task(agent_id: str, service: Service, signed: AgentId) -> Any:
    _same_agent(agent_id, signed)
    return service.board.task_for(agent_id)


@router.post("/experiments/{experiment_id}/rounds/{index}/{stage}", status_code=202)
async def submit(
    experiment_id: str,
    index: int,
    stage: str,
    attempt: int,
    request: Request,
    service: Service,
    agent_id: AgentId,
) -> dict[str, str]:
    """An agent's result for one stage of a round (JSON or raw bytes, by stage)."""
    if stage not in STAGES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown stage `{stage}`")
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "body too large")
    result = service.board.submit(StageKey(experiment_id, index, attempt, stage), agent_id, body)
    if result != SubmitResult.OK:
        log.info(
            "submission %s/%d/%s from %s refused: %s", experiment_id, index, stage, agent_id, result
        )
        raise HTTPException(status.HTTP_409_CONFLICT, result)
    return {"status": "accepted"}


@router.get("/experiments/{experiment_id}/models/{version}")
def agent_model(experiment_id: str, version: int, service: Service, _: AgentId) -> FileResponse:
    """A committed model version, or the candidate the agents evaluate before a commit."""
    with service.db.session() as s:
        if s.get(ExperimentRow, experiment_id) is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"experiment `{experiment_id}` not found"
            )
    for path in (
        service.store.path(experiment_id, version),
        service.store.candidate_path(experiment_id, version),
    ):
        if path.exists():
            return FileResponse(path, media_type="application/octet-stream")
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"model version {version} not found")
