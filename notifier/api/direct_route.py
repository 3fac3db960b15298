"""A route whose well-formed requests skip FastAPI's per-request machinery.

Why: on ``POST /v1/notifications`` FastAPI's dependency solving, validating the body from a
``json.loads`` dict and validating the response model again cost about 40 % of the event loop's
CPU per accepted notification (the profile in bench/README.md). The route stays an ordinary
:class:`APIRoute`: routing, middleware and the OpenAPI document are FastAPI's, from the declared
endpoint. Its handler first calls the endpoint's *direct* function (:func:`direct_post`), which
takes the request and returns a response, or ``None`` for any request it is not certain to answer
exactly as the declared endpoint would (a content type other than ``application/json``, a header
outside its declared bounds, a body pydantic does not validate from bytes). ``None`` hands the
same request to the declared handler (the body already read stays cached on the request), so
every refusal, its status, stable error code and message, comes from the one declared path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

DirectHandler = Callable[[Request], Awaitable[Response | None]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

_ATTRIBUTE = "__direct_handler__"


def direct_post(
    router: APIRouter, path: str, handler: DirectHandler, **options: Any
) -> Callable[[Endpoint], Endpoint]:
    """``@router.post(path, **options)`` for a :class:`DirectRoute` that tries ``handler``
    first."""

    def register(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _ATTRIBUTE, handler)
        router.add_api_route(
            path, endpoint, methods=["POST"], route_class_override=DirectRoute, **options
        )
        return endpoint

    return register


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        declared = super().get_route_handler()
        handler: DirectHandler | None = getattr(self.endpoint, _ATTRIBUTE, None)
        if handler is None:
            return declared

        async def route_handler(request: Request) -> Response:
            response = await handler(request)
            if response is None:
                return await declared(request)
            return response

        return route_handler


def is_json(request: Request) -> bool:
    """``application/json`` (with parameters or not): a type FastAPI also reads as JSON."""
    return is_json_type(request.headers.get("content-type"))


def is_json_type(content_type: str | None) -> bool:
    """:func:`is_json` of a ``Content-Type`` value."""
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == (
        "application/json"
    )


def headers_named(scope: Scope, names: frozenset[bytes]) -> dict[bytes, str]:
    """The first value of each of ``names`` (lower-case) the request carries, as Starlette's
    ``request.headers.get`` reads it, in one pass over the raw headers (a direct handler reads
    three: one ``Headers`` lookup each, and a ``KeyError`` for an absent one, cost more)."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in names and key not in found:
            found[key] = value.decode("latin-1")
    return found


async def body_of(request: Request) -> bytes:
    """The body, failing as FastAPI's own read fails (a 400 that the body limit's 413 replaces
    when the body was too large)."""
    try:
        return await request.body()
    except HTTPException:
        raise
    except Exception as e:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from e


class DirectEntry:
    """The application's outermost ASGI callable: a direct route's request skips the stack.

    Why: with the direct handler in place, what remained around it — Starlette's and FastAPI's
    own middlewares (server errors, exception telemetry, the app-wide body limit, exception
    handling, the exit stack), the included routers' matching and FastAPI's request wrapper —
    was about 44 % of the event loop's CPU per accepted notification (bench/README.md). A POST
    to a direct route's exact path runs its handler here instead, inside *our* middlewares,
    built from the application's own ``user_middleware`` list (request id, metrics, body limits,
    input guard: the same classes with the same options, so the same headers, metrics and
    refusals). An exception is answered by the handler the application registered for it.
    When the handler returns ``None``, the request, its body replayed, continues into the
    application's stack below our middlewares (exception handling, routing, the declared
    endpoint), so every refusal is still the declared endpoint's. Anything else is the full
    application's."""

    def __init__(self, app: Starlette, stack: ASGIApp) -> None:
        self.app, self.stack = app, stack
        self.routes: dict[str, tuple[APIRoute, DirectHandler]] = {}
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            handler = getattr(getattr(route, "endpoint", None), _ATTRIBUTE, None)
            if isinstance(route, APIRoute) and handler is not None and context.path:
                self.routes[context.path] = (route, handler)
        self.below = _below_user_middleware(app, stack)
        entry: ASGIApp = self._direct
        for middleware in reversed(app.user_middleware):
            factory: Any = middleware.cls
            entry = factory(entry, *middleware.args, **middleware.kwargs)
        self.entry = entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.routes
            and not scope.get("root_path")
            and self.below is not None
        ):
            await self.entry(scope, receive, send)
            return
        await self.stack(scope, receive, send)

    async def _direct(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, handler = self.routes[scope["path"]]
        scope["route"] = route  # the metrics label, as routing would set it
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except Exception as exc:
            response = await self._answer(request, exc)
        if response is None:
            body = await request.body()  # read (and cached) by the handler already
            await self._below(scope, _replay(body), send)
            return
        await response(scope, receive, send)

    async def _below(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.below is None:  # not reached: __call__ sends such requests to the stack
            raise RuntimeError("no stack below the middlewares")
        try:
            await self.below(scope, receive, send)
        except Exception as exc:  # what ServerErrorMiddleware would answer above our middlewares
            response = await self._answer(Request(scope, receive), exc)
            await response(scope, receive, send)

    async def _answer(self, request: Request, exc: Exception) -> Response:
        for kind in type(exc).__mro__:
            handler = self.app.exception_handlers.get(kind)
            if handler is not None:
                answer: Response = await handler(request, exc)
                return answer
        raise exc


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> ASGIMessage:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _below_user_middleware(app: Starlette, stack: ASGIApp) -> ASGIApp | None:
    """The part of the built stack that our middlewares wrap (None if the stack is not the
    shape this entry knows: then every request takes the full stack)."""
    ours: tuple[type, ...] = tuple(m.cls for m in app.user_middleware if isinstance(m.cls, type))
    layer: Any = stack
    seen_ours = False
    while layer is not None:
        if isinstance(layer, ours):
            seen_ours = True
        elif seen_ours:
            below: ASGIApp = layer
            return below
        layer = getattr(layer, "app", None)
    return None
