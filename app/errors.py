"""Every answer that is not a success, in one shape, mapped here once (issue 20):

    {"error": "one sentence a person can act on", "detail": where and what}

A refused request body or parameter (422) names each field: `detail` is a list of
`{"field": "areas", "error": "..."}`. A domain refusal (core/errors.py) carries what the
service put in `detail`. A route or method that does not exist (404, 405) and a body that
cannot be parsed (400) say so in the same shape, and so does an internal error (500),
which is logged with its traceback and answered without closing the connection: a
gateway that posts CAP alerts on one keep-alive connection used to lose the next alert
after a bad one (uvicorn closes the connection when an exception escapes the app).

`/openapi.json` describes this shape (FastAPI's default declares its own `{"detail": [...]}`
for 422, which this API never sends): generated clients read refusals correctly, and the
fuzzing test checks every answer against the document.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import AppError

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str = Field(description="the field or parameter, dotted (`targets.areas.0`)")
    error: str


class ValidationErrorBody(BaseModel):
    error: str = Field(description="the first refusal, `field: error`")
    detail: list[FieldError]


class ErrorBody(BaseModel):
    error: str
    detail: Any = Field(default=None, description="what was refused, and where")


def field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for e in exc.errors():
        loc = [str(p) for p in e["loc"] if p != "body"]
        named = (e.get("ctx") or {}).get("field")  # core/schemas.refuse(): a model's rule
        if named:
            loc.append(str(named))
        errors.append({"field": ".".join(loc), "error": e["msg"]})
    return errors


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(
        {"error": exc.message, "detail": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc) or [{"field": "", "error": "invalid request"}]
    first = errors[0]
    return JSONResponse(
        {"error": f"{first['field']}: {first['error']}", "detail": errors}, status_code=422
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"error": str(exc.detail), "detail": {"status": exc.status_code}},
        status_code=exc.status_code,
        headers=exc.headers,
    )


class InternalErrors:
    """The outermost layer: an exception that escaped everything else is answered 500 in
    the common shape and logged, and the connection stays usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # half an answer is out: only closing the connection can end it
            body = json.dumps({"error": "internal error", "detail": {"status": 500}}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    # The names FastAPI's 422 responses point at, holding what this API really sends.
    components["ValidationError"] = FieldError.model_json_schema()
    body = ValidationErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    body.pop("$defs", None)
    components["HTTPValidationError"] = body
    components["ErrorBody"] = ErrorBody.model_json_schema()
    refused = {
        "description": "refused: `error` says why, `detail` what and where",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code in ("4XX", "5XX"):
                responses.setdefault(code, refused)
    app.openapi_schema = schema
    return schema


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]


__all__ = ["ErrorBody", "InternalErrors", "field_errors", "install"]
