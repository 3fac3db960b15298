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
from fastapi.routing import APIRoute

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
    content_type = request.headers.get("content-type")
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == (
        "application/json"
    )


async def body_of(request: Request) -> bytes:
    """The body, failing as FastAPI's own read fails (a 400 that the body limit's 413 replaces
    when the body was too large)."""
    try:
        return await request.body()
    except HTTPException:
        raise
    except Exception as e:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from e
