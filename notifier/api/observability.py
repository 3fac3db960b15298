"""Request ids, access metrics and ``/metrics`` for the API.

Every request gets an id (the caller's ``X-Request-ID`` if it sent a sane one), echoed in the
response and carried in the log context and into the tasks the request publishes.
"""

from __future__ import annotations

import re
import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

from notifier import metrics
from notifier.logcontext import bind, request_id_var
from notifier.runtime import Runtime

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with bind(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                metrics.HTTP_REQUESTS.labels(path, scope["method"], str(status["code"])).inc()
                metrics.HTTP_DURATION.labels(path).observe(time.perf_counter() - started)


def metrics_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    collector = metrics.DeploymentCollector(runtime)

    @router.get("/metrics")
    def serve_metrics(request: Request) -> Response:
        return Response(metrics.exposition(collector), media_type=CONTENT_TYPE_LATEST)

    return router


__all__ = ["ObservabilityMiddleware", "metrics_router", "request_id_var"]
