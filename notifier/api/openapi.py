"""The OpenAPI document: bearer auth and every error response, declared once for every route.

FastAPI documents only the 422 of body validation, in its own ``{"detail"}`` shape, which this
API never sends. Here the generated document is completed after the fact, from the routes
themselves, so a router added later gets the same without doing anything:

- the ``bearer`` security scheme is FastAPI's own, from the ``Security`` dependency of the
  API-key check (:func:`notifier.api.deps.get_caller`): every operation that checks a key
  declares it;
- the error responses each operation can give (401 and 429 where a key is checked; 409 on the
  operations that change something; 400, 403, 404, 413, 415, 422 and 503 everywhere), all with
  the one error envelope
  (:class:`ErrorEnvelope`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from notifier.errors import HTTP_STATUS, ErrorCode


class ErrorDetailOut(BaseModel):
    field: str | None = Field(default=None, description="the field or parameter concerned")
    message: str
    code: str | None = Field(default=None, description="a finer-grained reason")


class ErrorOut(BaseModel):
    code: ErrorCode
    message: str
    details: list[ErrorDetailOut] = []


class ErrorEnvelope(BaseModel):
    """Every error this API answers."""

    error: ErrorOut


EVERYWHERE = (400, 403, 404, 413, 415, 422, 503)  # 403: also an inbound signature that fails
WITH_KEY = (401, 429)
CHANGING = (409,)  # a change that conflicts with the resource's state (archived, already sent)
_STATUS_TEXT = {
    400: "Malformed request (the body is not JSON)",
    401: "Missing, unknown or revoked API key",
    403: "The key lacks the scope or lane, or a signature does not verify",
    404: "No such resource for this key",
    413: "Body or batch too large",
    415: "The body is not declared as JSON",
    422: "A field, parameter or header is invalid (details name it)",
    409: "The change conflicts with the resource's state",
    429: "Rate limited (Retry-After says when)",
    503: "A dependency is down; retry (Retry-After)",
}


def _codes_for(status: int) -> str:
    codes = ", ".join(f"`{c.value}`" for c, s in HTTP_STATUS.items() if s == status)
    return f"{_STATUS_TEXT[status]}: {codes}"


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        envelope = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(envelope.pop("$defs", {}))
        schemas["ErrorEnvelope"] = envelope
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                statuses = EVERYWHERE + (WITH_KEY if operation.get("security") else ())
                if method in ("post", "put", "patch", "delete"):
                    statuses += CHANGING
                for status in sorted(statuses):
                    responses[str(status)] = {
                        "description": _codes_for(status),
                        "content": {"application/json": {"schema": ref}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook for a custom schema
