"""Request ids, access metrics and ``/metrics`` for the API.

Every request gets an id (the caller's ``X-Request-ID`` if it sent a sane one), echoed in the
response and carried in the log context and into the tasks the request publishes. A made id comes
from :func:`notifier.db.models.new_id` (no ``getrandom`` system call per request: ``uuid4`` here
was about a seventh of the API's event-loop time under load), and the labelled metric children
are kept per route, method and status instead of being looked up under the metric's lock on
every request.
"""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

from notifier import metrics
from notifier.db.models import new_id
from notifier.logcontext import request_id_var
from notifier.runtime import Runtime

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _SANE_ID.match(given) else new_id().replace("-", "")
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        bound = request_id_var.set(request_id)  # logcontext.bind, without a generator
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(bound)
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            requests, duration = _children(path, scope["method"], status["code"])
            requests.inc()
            duration.observe(time.perf_counter() - started)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return ""


_CHILDREN: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _children(path: str, method: str, code: int) -> tuple[Counter, Histogram]:
    """The request counter's and duration histogram's children for these labels, made once
    (routes, methods and statuses are few: the route template, not the raw path, is a label)."""
    key = (path, method, code)
    children = _CHILDREN.get(key)
    if children is None:
        children = _CHILDREN[key] = (
            metrics.HTTP_REQUESTS.labels(path, method, str(code)),
            metrics.HTTP_DURATION.labels(path),
        )
    return children


def metrics_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    collector = metrics.DeploymentCollector(runtime)

    @router.get("/metrics")
    def serve_metrics(request: Request) -> Response:
        return Response(metrics.exposition(collector), media_type=CONTENT_TYPE_LATEST)

    return router


__all__ = ["ObservabilityMiddleware", "metrics_router", "request_id_var"]
