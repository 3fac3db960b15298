"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from notifier import logs, sentry
from notifier.api import errors, openapi
from notifier.api.body_limit import BodyLimitMiddleware
from notifier.api.direct_route import DirectEntry
from notifier.api.input_guard import InputGuardMiddleware
from notifier.api.observability import ObservabilityMiddleware, metrics_router
from notifier.api.routers import all_routers
from notifier.api.v1.campaigns import IMPORT_PATH
from notifier.config import Settings
from notifier.runtime import Runtime


def create_served_app() -> FastAPI:
    """The factory ``notifier api`` gives uvicorn. With ``--workers N`` uvicorn starts N fresh
    interpreters (spawned, not forked) and each calls this factory, so logging is configured
    here, in every process that serves requests: configured only in the supervising parent, the
    children logged bare messages and dropped INFO."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    runtime = runtime or Runtime.build(settings or Settings())
    settings = runtime.settings
    sentry.init(settings.sentry_dsn, settings.env.value)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything imported and built at start-up is long-lived: keep it out of the collector's
        # way, and collect the young generation less often (intake allocates many short-lived
        # objects per request; full collections were the p99 spikes).
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        yield

    # Swagger UI and ReDoc served from the packaged assets of fastapi-offline, not a CDN: /docs
    # works offline and behind strict egress rules
    app = FastAPIOffline(
        title="notifier",
        version="0.1.0",
        summary="Notification delivery: email, SMS and push, with searchable delivery logs.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    errors.install(app)
    for router in all_routers():
        app.include_router(router)
    app.include_router(metrics_router(runtime))
    openapi.install(app)  # after every router: it documents them all
    app.add_middleware(InputGuardMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=settings.max_body_bytes,
        limits_by_path={"/v1/notifications/batch": settings.max_batch_bytes},
        limits_by_pattern=[(IMPORT_PATH, settings.max_import_bytes)],
    )
    app.add_middleware(ObservabilityMiddleware)  # outermost: ids and metrics for every answer
    # built now, with the direct routes' entry in front (no middleware can be added later)
    app.middleware_stack = DirectEntry(app, app.build_middleware_stack())
    return app
