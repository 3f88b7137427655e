"""Every error answer is JSON with a ``detail``; validation errors name their fields.

No stack trace ever reaches a client: unexpected exceptions become a 500 with a request
reference, and the traceback goes to the log only.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from bus import logging as blog
from bus.errors import RagrelayError, UsageError

log = blog.get_logger("ragrelay.gateway")


class InvalidField(Exception):
    """A request value the route itself rejects: answered 422 naming ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def field_errors(errors: Iterable[Any], prefix: Sequence[str] = ()) -> list[dict[str, str]]:
    """pydantic/FastAPI errors as ``{"field": "body.budget.max_iterations", "message": ...}``."""
    out = []
    for err in errors:
        loc = [*prefix, *(str(p) for p in err.get("loc", ()))]
        out.append({"field": ".".join(loc) or "(request)", "message": str(err.get("msg", ""))})
    return out


def _validation_response(fields: list[dict[str, str]]) -> JSONResponse:
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return JSONResponse(
        {"detail": f"invalid request: {summary}", "errors": fields}, status_code=422
    )


async def on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    found = exc.errors() if isinstance(exc, RequestValidationError) else []
    return _validation_response(body_errors(found, request.headers.get("content-type")))


def body_errors(errors: Sequence[Any], content_type: str | None) -> list[dict[str, str]]:
    """Field errors, except where the body itself is the problem: malformed JSON is named
    as JSON syntax at its position (FastAPI puts the character offset in ``loc``, which
    reads like a field ``body.14``), and a body sent without ``Content-Type:
    application/json`` (curl's ``-d`` alone sends a form) names the header."""
    out: list[dict[str, str]] = []
    media = (content_type or "").partition(";")[0].strip().lower()
    is_json = media == "application/json" or media.endswith("+json")
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            pos = loc[1] if len(loc) > 1 else "?"
            why = (err.get("ctx") or {}).get("error") or err.get("msg") or "JSON decode error"
            out.append({"field": "body", "message": f"malformed JSON at character {pos}: {why}"})
        elif loc == ("body",) and not is_json:
            out.append(
                {
                    "field": "header.Content-Type",
                    "message": "the body must be JSON sent with the header "
                    "'Content-Type: application/json' (got "
                    + (repr(content_type) if content_type else "no Content-Type")
                    + ")",
                }
            )
        else:
            out.extend(field_errors([err]))
    return out


async def on_model_validation(request: Request, exc: Exception) -> JSONResponse:
    found = exc.errors() if isinstance(exc, ValidationError) else []
    return _validation_response(field_errors(found, prefix=("body",)))


async def on_http(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):
        return await on_unexpected(request, exc)
    if exc.status_code == 400:  # FastAPI: the body is not decodable JSON (e.g. not UTF-8)
        return _validation_response([{"field": "body", "message": str(exc.detail)}])
    return JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def on_invalid_field(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, InvalidField):
        return await on_unexpected(request, exc)
    return _validation_response([{"field": exc.field, "message": exc.message}])


async def on_usage(request: Request, exc: Exception) -> JSONResponse:
    return _validation_response([{"field": "body", "message": str(exc)}])


async def on_redis(request: Request, exc: Exception) -> JSONResponse:
    log.error("gateway.redis_error", error=str(exc), path=request.url.path)
    return JSONResponse(
        {"detail": "the job store is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    ref = uuid.uuid4().hex[:12]
    # The traceback goes to the log as text (never to the client).
    log.error(
        "gateway.unhandled",
        ref=ref,
        path=request.url.path,
        error=repr(exc),
        traceback="".join(traceback.format_exception(exc)),
    )
    return JSONResponse({"detail": f"internal error (reference {ref})"}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(ValidationError, on_model_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(InvalidField, on_invalid_field)
    app.add_exception_handler(UsageError, on_usage)
    app.add_exception_handler(redis.exceptions.RedisError, on_redis)
    app.add_exception_handler(RagrelayError, on_unexpected)
    app.add_exception_handler(Exception, on_unexpected)
