"""The support audit log: who looked at what, who changed what, and who was refused.

Every console search, notification view, recipient view and action, and every support API
search and view, writes one row in the same transaction as the read it records. Refusals are
audited too, in their own transaction (nothing else is written for them): a failed or
rate-limited sign-in (``sign_in_failed``), and an action the account may not do or whose form
did not come from the console (``refused``). Console rows carry the request's source address
(the peer, or the forwarded client when the peer is a trusted proxy: see the README) and its
user agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request

from notifier.db.models import utcnow
from notifier.keys import Caller
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

    @classmethod
    def of_staff(cls, staff: Staff) -> Actor:
        return cls(ActorKind.STAFF, staff.id, staff.email)

    @classmethod
    def of_api_key(cls, caller: Caller) -> Actor:
        return cls(ActorKind.API_KEY, caller.id, caller.name)


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    *,
    notification_id: str | None = None,
    query: dict[str, Any] | None = None,
    source: Source | None = None,
) -> None:
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
        )
    )


def page(
    session: Session, *, before_id: int | None = None, actor: str | None = None, limit: int = 100
) -> tuple[list[AuditEntry], int | None]:
    """Newest first; returns the rows and the id to continue before, if there are more."""
    stmt = select(AuditEntry)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor.strip())
    rows = list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)
