"""Experiments: create from a spec, list, get, start, stop, delete; rounds; global model."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import FileResponse

from controller.api.deps import Operator, Service, invalid_json
from controller.api.openapi import ERRORS, json_request_body
from controller.api.schemas import ExperimentPublic, RoundPublic
from controller.db import ExperimentRow
from controller.service import ExperimentStartError
from protocol.spec import ExperimentSpec, SpecError, parse_spec

router = APIRouter(
    prefix="/experiments", tags=["experiments"], responses=ERRORS(401, 404, 413, 422)
)


#: What a created experiment's id leads to (OpenAPI links, for clients and stateful tests).
_LINKS = {
    op: {"operationId": op, "parameters": {"experiment_id": "$response.body#/id"}}
    for op in (
        "getExperiment",
        "getExperimentSpec",
        "startExperiment",
        "stopExperiment",
        "listRounds",
        "downloadModel",
        "deleteExperiment",
    )
}
#: The body's example: the quickstart's spec, trimmed to two rounds.
_EXAMPLE: dict[str, Any] = {
    "name": "quickstart",
    "seed": 0,
    "topology": {
        "area_m": 200.0,
        "aps": [{"id": "ap0"}, {"id": "ap1"}],
        "ues": [{"id": "ue0"}, {"id": "ue1"}, {"id": "ue2"}],
    },
    "fl": {"rounds": 2},
}


async def _spec_body(request: Request, service: Service, _: Operator) -> ExperimentSpec:
    """The body as an experiment spec (read after the operator's token was checked)."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        service.counters["malformed_requests"] += 1
        raise invalid_json() from None
    try:
        return parse_spec(data, source="request body")
    except SpecError as err:
        service.counters["malformed_requests"] += 1
        detail = [{**d, "loc": ["body", *d["loc"]]} for d in err.details]
        raise HTTPException(422, detail) from None
    except RecursionError:
        service.counters["malformed_requests"] += 1
        raise HTTPException(
            422,
            [{"loc": ["body"], "msg": "spec nests too deep", "type": "value_error"}],
        ) from None


def _get(service: Service, experiment_id: str) -> ExperimentRow:
    with service.db.session() as s:
        row = s.get(ExperimentRow, experiment_id)
        if row is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"experiment `{experiment_id}` not found"
            )
        return row


def _public(service: Service, row: ExperimentRow) -> ExperimentPublic:
    spec = row.spec
    engine = service.engines.get(row.id)
    current = engine.current.index if engine is not None and engine.current else None
    return ExperimentPublic(
        id=row.id,
        name=row.name,
        status=row.status,
        algorithm=spec.get("algorithm", {}).get("name", "proposed"),
        rounds_total=spec.get("fl", {}).get("rounds", 0),
        rounds_completed=row.next_round,
        model_version=row.model_version,
        current_round=current,
        error=row.error,
        created_at=row.created_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ExperimentPublic,
    operation_id="createExperiment",
    responses={201: {"links": _LINKS}},
    openapi_extra=json_request_body(ExperimentSpec, example=_EXAMPLE),
)
async def create_experiment(
    service: Service, _: Operator, spec: Annotated[ExperimentSpec, Depends(_spec_body)]
) -> Any:
    """Create an experiment from a spec (JSON body: the YAML file's content as JSON)."""
    row = ExperimentRow(
        id=f"{spec.name}-{uuid.uuid4().hex[:8]}",
        name=spec.name,
        spec_json=spec.model_dump_json(by_alias=True),
    )
    with service.db.session() as s:
        s.add(row)
    return _public(service, row)


@router.get("", operation_id="listExperiments", response_model=list[ExperimentPublic])
def list_experiments(service: Service, _: Operator) -> Any:
    with service.db.session() as s:
        rows = s.query(ExperimentRow).order_by(ExperimentRow.created_at).all()
    return [_public(service, r) for r in rows]


@router.get("/{experiment_id}", operation_id="getExperiment", response_model=ExperimentPublic)
def get_experiment(experiment_id: str, service: Service, _: Operator) -> Any:
    return _public(service, _get(service, experiment_id))


@router.get("/{experiment_id}/spec", operation_id="getExperimentSpec")
def get_spec(experiment_id: str, service: Service, _: Operator) -> Any:
    return _get(service, experiment_id).spec


@router.post(
    "/{experiment_id}/start",
    operation_id="startExperiment",
    response_model=ExperimentPublic,
    responses=ERRORS(409),
)
def start_experiment(experiment_id: str, service: Service, _: Operator) -> Any:
    """Start or resume; 409 when it has completed, or when it cannot start (it is then
    ``failed``, with the reason in ``error``)."""
    row = _get(service, experiment_id)
    if row.status == "completed":
        raise HTTPException(status.HTTP_409_CONFLICT, "experiment already completed")
    try:
        service.start_experiment(experiment_id)
    except ExperimentStartError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    return _public(service, _get(service, experiment_id))


@router.post(
    "/{experiment_id}/stop", operation_id="stopExperiment", response_model=ExperimentPublic
)
def stop_experiment(experiment_id: str, service: Service, _: Operator) -> Any:
    _get(service, experiment_id)
    service.stop_experiment(experiment_id)
    return _public(service, _get(service, experiment_id))


@router.delete(
    "/{experiment_id}", operation_id="deleteExperiment", status_code=status.HTTP_204_NO_CONTENT
)
def delete_experiment(experiment_id: str, service: Service, _: Operator) -> Response:
    _get(service, experiment_id)
    service.stop_experiment(experiment_id)
    with service.db.session() as s:
        row = s.get(ExperimentRow, experiment_id)
        if row is not None:
            s.delete(row)
    service.events.delete(experiment_id)
    service.store.delete(experiment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{experiment_id}/rounds", operation_id="listRounds", response_model=list[RoundPublic])
def list_rounds(experiment_id: str, service: Service, _: Operator) -> Any:
    _get(service, experiment_id)
    with service.db.session() as s:
        return [RoundPublic.from_row(r) for r in service.db.rounds(s, experiment_id)]


@router.get("/{experiment_id}/rounds/{index}", operation_id="getRound", response_model=RoundPublic)
def get_round(experiment_id: str, index: int, service: Service, _: Operator) -> Any:
    _get(service, experiment_id)
    with service.db.session() as s:
        for r in service.db.rounds(s, experiment_id):
            if r.index == index:
                return RoundPublic.from_row(r, full=True)
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"round {index} of `{experiment_id}` not found")


@router.get("/{experiment_id}/model", operation_id="downloadModel")
def download_model(experiment_id: str, service: Service, _: Operator) -> FileResponse:
    """The latest committed global model (safetensors)."""
    row = _get(service, experiment_id)
    if row.model_version < 0:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no global model yet")
    path = service.store.path(experiment_id, row.model_version)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{experiment_id}-v{row.model_version}.safetensors",
        headers={"X-Model-Version": str(row.model_version)},
    )
