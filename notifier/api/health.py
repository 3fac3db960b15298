"""Liveness (``/healthz``), readiness (``/readyz``: can this process accept and store?) and
delivery health (``/health/delivery``: is anything being delivered? see
``notifier.delivery_health``). Only ``/healthz`` is routed from outside (nginx, the ingress)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select, text

from notifier import delivery_health
from notifier.api.deps import RuntimeDep
from notifier.broker import broker_reachable
from notifier.db.models import Heartbeat
from notifier.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks = {"database": _database_ok(runtime), "broker": broker_reachable(runtime.celery)}
    ready = all(checks.values())
    body: dict[str, Any] = {
        "status": "ready" if ready else "unavailable",
        "checks": {name: ("ok" if ok else "unreachable") for name, ok in checks.items()},
    }
    circuits = _circuits(runtime)
    if circuits:
        body["providers"] = (
            circuits  # informational: an open circuit fails over, it is not unreadiness
        )
    if not ready:
        body["error"] = {
            "code": "service_unavailable",
            "message": "a dependency is unreachable",
            "details": [],
        }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/health/delivery")
def delivery(runtime: RuntimeDep) -> JSONResponse:
    """200 while delivering; 503 (in the error envelope) naming what stopped it."""
    try:
        with runtime.sessions() as session:
            health = delivery_health.assess(session, runtime.settings)
    except Exception:  # no database: nothing can be known, and nothing delivers
        body = {
            "status": "unknown",
            "error": {
                "code": "service_unavailable",
                "message": "the database is unreachable",
                "details": [],
            },
        }
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    body = health.as_dict()
    if health.delivering:
        return JSONResponse(body)
    body["error"] = {
        "code": "service_unavailable",
        "message": "delivery has stopped",
        "details": [
            {"field": p.queue or "beat", "code": p.code, "message": p.message}
            for p in health.problems
        ],
    }
    return JSONResponse(body, status_code=503)


def _circuits(runtime: Runtime) -> dict[str, str]:
    try:
        with runtime.sessions() as session:
            rows = session.scalars(select(Heartbeat).where(Heartbeat.name.like("circuit:%"))).all()
    except Exception:  # the database check reports that
        return {}
    return {row.name.split(":", 1)[1]: (row.detail or {}).get("state", "unknown") for row in rows}


def _database_ok(runtime: Runtime) -> bool:
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means not ready
        return False
