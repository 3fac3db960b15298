"""The support audit log: who looked at what, and who changed what.

Every console search, notification view, recipient view and action, and every support API
search and view, writes one row in the same transaction as the read it records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.db.models import utcnow
from notifier.keys import Caller
from notifier.support.models import ActorKind, AuditAction, AuditEntry
from notifier.support.staff import Staff


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
