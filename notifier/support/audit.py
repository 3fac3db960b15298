"""The support audit log: who looked at what, who changed what, and who was refused.

Every console search, notification view, recipient view and action, and every support API
search and view, writes one row in the same transaction as the read it records. Refusals are
audited too, in their own transaction (nothing else is written for them): a failed or
rate-limited sign-in (``sign_in_failed``), and an action the account may not do or whose form
did not come from the console (``refused``). Console rows carry the request's source address
(the peer, or the forwarded client when the peer is a trusted proxy: see the README) and its
user agent.

Every row names the service the look belonged to (``service_id``): the viewed notification's
(or suppression's) service when the look was at one object, else the actor's service (a
key's, a staff member's). A platform admin's search across every service, and a refused
sign-in naming no account, belong to none (NULL). The audit page shows an admin of a service
their service's rows only, through the same scope as every other read
(:mod:`notifier.ownership`); a platform admin sees every row and may filter by service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request

from notifier.db.models import utcnow
from notifier.keys import Caller
from notifier.ownership import owned, scope_of
from notifier.support.models import ActorKind, AuditAction, AuditEntry
from notifier.support.staff import Staff

USER_AGENT_LENGTH = 300


@dataclass(frozen=True)
class Source:
    """Where an audited request came from."""

    address: str | None
    user_agent: str | None

    @classmethod
    def of(cls, request: Request) -> Source:
        agent = request.headers.get("user-agent")
        return cls(
            address=request.client.host[:100] if request.client else None,
            user_agent=agent[:USER_AGENT_LENGTH] if agent else None,
        )


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str
    name: str
    scope: str | None = None  # the service the actor's looks belong to; None: every service

    @classmethod
    def of_staff(cls, staff: Staff) -> Actor:
        return cls(ActorKind.STAFF, staff.id, staff.email, staff.scope)

    @classmethod
    def of_api_key(cls, caller: Caller) -> Actor:
        return cls(ActorKind.API_KEY, caller.id, caller.name, scope_of(caller))


class _ActorsService:
    """Marker: the entry belongs to the actor's scope."""


ACTORS_SERVICE = _ActorsService()


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    *,
    notification_id: str | None = None,
    query: dict[str, Any] | None = None,
    source: Source | None = None,
    service_id: str | _ActorsService | None = ACTORS_SERVICE,
) -> None:
    """One audit row; ``service_id`` is the looked-at object's service when there is one."""
    session.add(
        AuditEntry(
            at=utcnow(),
            actor_kind=actor.kind.value,
            actor_id=actor.id,
            actor=actor.name,
            action=action.value,
            notification_id=notification_id,
            query={k: v for k, v in (query or {}).items() if v not in (None, "")} or None,
            client_address=source.address if source else None,
            user_agent=source.user_agent if source else None,
            service_id=actor.scope if isinstance(service_id, _ActorsService) else service_id,
        )
    )


def page(
    session: Session,
    *,
    scope: str | None,
    before_id: int | None = None,
    actor: str | None = None,
    service_id: str | None = None,
    limit: int = 100,
) -> tuple[list[AuditEntry], int | None]:
    """Newest first, within ``scope`` (and of ``service_id`` when a platform admin names one);
    returns the rows and the id to continue before, if there are more."""
    stmt = select(AuditEntry).where(*owned(AuditEntry.service_id, scope))
    if service_id:
        stmt = stmt.where(AuditEntry.service_id == service_id)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor.strip())
    rows = list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)
