"""Every error leaves as one JSON envelope with a stable code; mapped once, here."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from notifier.errors import ErrorCode, NotifierError, from_validation_errors

log = logging.getLogger("notifier.api")

_HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN_SCOPE,
}


def error_response(error: NotifierError) -> JSONResponse:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return JSONResponse(error.envelope(), status_code=error.http_status, headers=headers)


def _request_error(request: Request, errors: list[dict[str, Any]]) -> NotifierError:
    """The body-level problems get their own codes: no JSON at all, or not declared as JSON."""
    body_errors = [e for e in errors if tuple(e.get("loc", ()))[:1] == ("body",)]
    if body_errors and request.method in ("POST", "PUT", "PATCH"):
        content_type = request.headers.get("content-type", "")
        declared_json = not content_type or content_type.split(";")[0].strip().lower().endswith(
            ("/json", "+json")
        )
        if not declared_json:
            return NotifierError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON with 'Content-Type: application/json' "
                f"(got {content_type[:100]!r})",
            )
        if any(
            e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in body_errors
        ):
            return NotifierError(
                ErrorCode.MALFORMED_JSON, "the request body is empty: send a JSON object"
            )
    return from_validation_errors(errors)


def install(app: FastAPI) -> None:
    @app.exception_handler(NotifierError)
    async def _notifier_error(_: Request, exc: NotifierError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_request_error(request, list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, ErrorCode.VALIDATION_ERROR)
        message = exc.detail if isinstance(exc.detail, str) else code.value.replace("_", " ")
        response = error_response(NotifierError(code, message))
        response.status_code = exc.status_code
        return response

    @app.exception_handler(DataError)
    @app.exception_handler(UnicodeEncodeError)
    async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
        # the database refused a value (a backstop: validation refuses these first); retrying
        # the same request can never succeed, so this is the caller's 422, not a 503
        log.warning("api.unstorable_value", extra={"error": type(exc).__name__})
        return error_response(
            NotifierError(ErrorCode.VALIDATION_ERROR, "a value in this request cannot be stored")
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        log.error("api.database_unavailable", extra={"error": type(exc).__name__})
        return error_response(
            NotifierError(
                ErrorCode.DATABASE_UNAVAILABLE,
                "the database is unavailable; retry later",
                retry_after=5,
            )
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("api.unexpected_error", extra={"error": type(exc).__name__})
        return error_response(NotifierError(ErrorCode.INTERNAL_ERROR, "internal error"))
