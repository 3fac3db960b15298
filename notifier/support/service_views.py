"""The console's per-service pages: today's figures of each service the staff member sees
(``notifier.operations.service_views``, the same figures as ``notifier status --service``), and
the service names the audit page filters by."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.operations import ServiceView, service_views
from notifier.ownership import owned
from notifier.runtime import Runtime
from notifier.services.models import Service


def today(session: Session, runtime: Runtime, scope: str | None) -> list[ServiceView]:
    """Every service within ``scope``, with the quota use this process's limiter counts (the
    shared Redis counter in production, this process's own in the embedded default)."""
    return service_views(session, runtime.settings, runtime.limiter, scope)


def service_names(session: Session, scope: str | None) -> dict[str, str]:
    """Service id -> name, of the services within ``scope``, by name."""
    stmt = select(Service.id, Service.name).where(*owned(Service.id, scope)).order_by(Service.name)
    return dict(session.execute(stmt).tuples().all())


def service_id_named(names: dict[str, str], name: str) -> str | None:
    """The id of the service called ``name`` among ``names``; None for no (visible) service."""
    return next((sid for sid, known in names.items() if known == name), None) if name else None
