"""Refuse path ids and query parameters that the database cannot store, for every route.

A NUL (``%00``) in ``/v1/notifications/<id>`` or in ``?reference=`` used to reach PostgreSQL,
which refused it; that surfaced as 503 ``database_unavailable`` with a Retry-After, so clients
retried a request that can never succeed. Checked once here, before routing, so every router
(present and future) gets it: 422 ``validation_error`` naming the parameter.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from notifier.api.errors import error_response
from notifier.storable import find_unstorable, unstorable_error


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            field = _unstorable_field(scope)
            if field is not None:
                await error_response(unstorable_error(field))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _unstorable_field(scope: Scope) -> str | None:
    if find_unstorable(scope.get("path", "")) is not None:
        return "path"
    query: bytes = scope.get("query_string") or b""
    if b"%00" in query.lower() or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return name.replace("\x00", "") or "query"
        return "query"
    return None
