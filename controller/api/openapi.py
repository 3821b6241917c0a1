"""The OpenAPI document: declared error responses, and request bodies read by dependencies.

Routes read their bodies in dependencies declared after their credentials (so that no body is
read before the caller is known); FastAPI cannot see those bodies, so each such route declares
its body here with :func:`json_request_body`, and :func:`install` puts the models' schemas in
the document's components.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

__all__ = ["ERRORS", "Problem", "ValidationProblem", "install", "json_request_body"]


class Problem(BaseModel):
    """An error: what went wrong, in words."""

    detail: str


class FieldProblem(BaseModel):
    """One invalid field: its path in the request, the message, the kind of error."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A request with invalid fields; one entry per problem."""

    detail: list[FieldProblem]


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "Not allowed for this caller",
    404: "No such resource",
    408: "Request body too slow",
    409: "Conflict with the resource's state",
    413: "Request body too large",
    422: "Invalid fields",
}


def ERRORS(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these error status codes."""
    return {
        code: {
            "model": ValidationProblem if code == 422 else Problem,
            "description": _DESCRIPTIONS[code],
        }
        for code in codes
    }


_BODIES: dict[str, type[BaseModel]] = {}


def json_request_body(
    model: type[BaseModel], example: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``openapi_extra=`` that declares a required JSON body of ``model``."""
    _BODIES[model.__name__] = model
    media: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    if example is not None:
        media["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": media}}}


def install(app: FastAPI) -> None:
    """Generate ``app``'s document with the schemas of the declared bodies in its components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, routes=app.routes, servers=app.servers
            )
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, model in _BODIES.items():
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[name] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
