"""The service's OpenAPI contract: response shapes, the errors each route declares, the job form.

Kept apart from the routes (server.py) so the schema reads as one document; a schemathesis run
(tests/backend/test_api_fuzz.py) holds the server to it.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from fastapi import FastAPI
from pydantic import BaseModel

from .models import TASKS


class Replica(BaseModel):
    """A `serve --ray` replica, as its last heartbeat told."""

    id: str
    node: str
    pid: int
    device: str
    models: list[str]
    loads: int  # models loaded since it started: far more than its models' count means reloading
    job: Optional[str]
    state: str  # idle, busy, or lost (silent, or died under a job)
    last_seen_s: float


class Health(BaseModel):
    status: str
    version: str
    device: str
    queue_length: int
    replicas: Optional[list[Replica]] = None  # only with serve --ray


class ModelInfo(BaseModel):
    name: str
    task: str
    default: bool
    available_offline: bool
    description: str
    source: str
    knows: list[str]
    params: dict[str, Any]
    limits: dict[str, tuple[Union[int, float], Union[int, float]]]  # numeric parameters' [low, high]; ints: whole numbers
    expected_time: str = ""  # how long a job takes, in a few words ("" = not said)
    tier: str = ""  # "draft", "quality" or "": the sidebar's Fast Draft / Quality choice
    takes_draft: bool = False  # a text_to_3d model that starts from a `mesh` upload when given one
    resumable: bool = False  # a cancelled or interrupted job of it goes on exactly (POST /jobs/{id}/resume)


class JobRecord(BaseModel):
    id: str
    task: str
    model: str
    params: dict[str, Any]
    state: str
    phase: str
    step: int
    total: int
    progress: float
    eta_s: Optional[float]
    message: str
    error: Optional[str]
    has_preview: bool
    has_result: bool
    result_metadata: Optional[dict[str, Any]]
    has_current_state: bool = False  # GET /jobs/{id}/current answers (a long job running, or one cancelled)
    has_checkpoint: bool = False  # cancelled or interrupted, it can go on exactly: POST /jobs/{id}/resume
    resumed_from: Optional[str] = None  # the job this one goes on from
    candidates: int = 0  # a gallery's images: GET /jobs/{id}/candidates/{k} for k below this
    ran_on: Optional[str] = None  # serve --ray: the replica that ran it ("ID on NODE"; the last, if retried)
    created_at: float
    started_at: Optional[float]
    finished_at: Optional[float]


class ErrorBody(BaseModel):
    """Every error answer: one readable sentence saying what was wrong and how to fix it."""
    detail: str


_ERROR_CAUSES = {
    400: "Bad input: a parameter or form field, or no Host header",
    401: "Missing or wrong bearer token",
    403: "The Host header names another host than this backend",
    404: "No such job, or the job has no such file",
    409: "The job has no such result (yet)",
    413: "The request body is larger than the upload limit",
    429: "Too many requests of this kind wait already; ask again in a moment",
    503: "The backend is shutting down",
    504: "The running job did not reach its next step in time",
    507: "Not enough disk space to store the uploads",
}
_GUARD_ERRORS = (400, 401, 403, 413)  # _Guard answers these on every route, before the route runs


def errors(*statuses: int) -> dict[int, dict[str, Any]]:
    """The `responses=` declaring the guard's errors and `statuses` as ErrorBody answers."""
    responses: dict[int, dict[str, Any]] = {
        status: {"model": ErrorBody, "description": _ERROR_CAUSES[status]}
        for status in sorted({*_GUARD_ERRORS, *statuses})}
    responses[401]["headers"] = {"WWW-Authenticate": {
        "description": "Bearer", "required": True, "schema": {"type": "string"}}}
    return responses


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema with two corrections, built once like FastAPI's own.

    FastAPI declares a 422 on every route with parameters unless the route declares 422, 4XX or
    "default"; this service answers validation errors with a 400 (see `validation_error`), which
    `_errors` declares with the route's other statuses, so the 422s and their schemas are dropped.
    The bearer token is checked by `_Guard`, not by a FastAPI dependency, so it is declared here.
    """
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)  # caches itself in app.openapi_schema
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation["responses"].pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(name, None)
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        schema["security"] = [{"bearer": []}]
    return app.openapi_schema


# OpenAPI 3.1 spells a file part `contentMediaType: application/octet-stream` (3.0's `format:
# binary`); the form reads mesh, image, face_mask, mesh_b and texture only as file parts (with a filename).
_FILE = {"type": "string", "contentMediaType": "application/octet-stream"}
JOB_FORM = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["spec"], "additionalProperties": False,
        "properties": {
            "spec": {"type": "string", "contentMediaType": "application/json", "contentSchema": {
                "type": "object", "required": ["task"], "additionalProperties": False, "properties": {
                    "task": {"enum": list(TASKS)},
                    "model": {"type": ["string", "null"], "description": "null: the task's default"},
                    "params": {"type": ["object", "null"], "description": "see /models"}}},
                "description": 'JSON: {"task": ..., "model": ..., "params": {...}}'},
            "mesh": {**_FILE, "description": "GLB"},
            "image": {**_FILE, "description": "PNG or JPEG"},
            "face_mask": {**_FILE, "description": "one byte per triangle of mesh, nonzero = selected"},
            "mesh_b": {**_FILE, "description": "GLB, second shape for part mixing"},
            "texture": {**_FILE, "description": "PNG or JPEG, the texture a repaint (texture with face_mask) keeps "
                                                "outside the selected faces"},
        },
    }}}},
}
