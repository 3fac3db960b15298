"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from notifier.db.session import transaction
from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Caller
from notifier.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:  # async: no thread hop for a lookup
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with transaction(runtime.sessions) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


# Declares the bearer scheme in the OpenAPI document, on every operation that depends on
# get_caller (so a new router is documented right without doing anything). Parsing and the
# 401 stay ours, below: auto_error=False makes it only a declaration.
BEARER = HTTPBearer(
    scheme_name="bearer", auto_error=False, description="An API key from `notifier keys create`"
)


async def get_caller(
    runtime: RuntimeDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    return await authenticated_caller(runtime, authorization)


async def authenticated_caller(runtime: Runtime, authorization: str | None) -> Caller:
    """Authenticate (from the short cache without leaving the event loop, else from the database
    on a worker thread), then count the request against the key's rate limit (from tokens this
    process leased from Redis while the key is busy: no round trip per request). The one
    implementation of :func:`get_caller`, also called by the direct path of
    :mod:`notifier.api.direct_route`."""
    caller = runtime.authenticator.cached(authorization)
    if caller is None:
        caller = await run_in_threadpool(_authenticate, runtime, authorization)
    verdict = await runtime.limiter.ahit(
        caller.rate_limit or runtime.settings.api_rate_limit, "api-key", caller.id, lease=True
    )
    if not verdict.allowed:
        raise NotifierError(
            ErrorCode.RATE_LIMITED,
            "rate limit for this API key exceeded",
            retry_after=verdict.retry_after,
        )
    return caller


def _authenticate(runtime: Runtime, authorization: str | None) -> Caller:
    with runtime.sessions() as session:
        return runtime.authenticator.authenticate(session, authorization)


ApiKeyDep = Annotated[Caller, Depends(get_caller)]
