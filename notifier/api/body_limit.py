"""Refuse request bodies over the configured size with 413 before reading them whole.

A declared ``Content-Length`` over the limit is refused at once. A chunked body is counted as it
arrives; when it passes the limit the application's reading fails, and whatever the application
would then answer (FastAPI turns a failed body read into a 400) is replaced by the 413.

Limits are per exact path (``limits_by_path``) or per path pattern (``limits_by_pattern``, for
paths with parameters such as ``/v1/audiences/{name}/import``); the default applies otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        default_limit: int,
        limits_by_path: dict[str, int] | None = None,
        limits_by_pattern: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits_by_path = limits_by_path or {}
        self.limits_by_pattern = list(limits_by_pattern)

    def limit_for(self, path: str) -> int:
        if path in self.limits_by_path:
            return self.limits_by_path[path]
        for pattern, limit in self.limits_by_pattern:
            if pattern.fullmatch(path):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        received = 0
        too_large = False

        async def limited_receive() -> ASGIMessage:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        responded = False

        async def guarded_send(message: ASGIMessage) -> None:
            nonlocal responded
            if too_large:
                if not responded:
                    responded = True
                    await _too_large(send, limit)
                return
            responded = responded or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not responded:
                await _too_large(send, limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"request body over {limit} bytes",
                "details": [],
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
