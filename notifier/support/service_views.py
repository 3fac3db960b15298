"""The console's per-service pages: today's figures of each service the staff member sees
(``notifier.operations.service_views``, the same figures as ``notifier status --service``), the
service names the audit page filters by, and what a platform admin manages there (create a
service, set or lift its trial mode) through the one registry the API and the CLI use."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.operations import ServiceView, service_views
from notifier.ownership import owned
from notifier.runtime import Runtime
from notifier.services import registry
from notifier.services.models import Service
from notifier.services.platform import load_platform
from notifier.services.schemas import ServiceChanges


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


def create(session: Session, runtime: Runtime, name: str) -> Service:
    """A new service in trial mode, with the platform's settings (change them with
    ``notifier services update`` or ``PATCH /v1/services/{name}``)."""
    row, _ = registry.create(
        session, name, ServiceChanges(), load_platform(runtime.settings), runtime.sealer
    )
    return row


def set_trial(session: Session, runtime: Runtime, name: str, trial: bool) -> Service:
    row = registry.get(session, name)
    registry.apply(
        row, ServiceChanges(trial=trial), load_platform(runtime.settings), runtime.sealer
    )
    return row
