"""``sending -> sent`` for a task's whole group: the recording step's one status write per task.

Part of :mod:`notifier.notifications.repository` (which re-exports :func:`mark_sent`), kept apart
for its size: the same guard as ``repository.move`` (only from ``sending``), but each row gets
its own provider, message id and attempts, so on PostgreSQL it is one ``UPDATE ... FROM
unnest(arrays)`` naming every row by id and its own ``created_at`` (pruned to their partitions by
:mod:`notifier.notifications.by_id`'s conditions, one statement text whatever the group's size)
instead of one UPDATE per row: bench.e2e's worker path sent 1.08 statements per notification
before, 0.10 after (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from notifier.db.models import Notification
from notifier.notifications import by_id
from notifier.statuses import Status

_SENT_WHERE = (
    Notification.__table__.c.id == bindparam("b_id"),
    Notification.__table__.c.status == Status.SENDING.value,
)
_SENT_VALUES: dict[str, Any] = dict(
    status=Status.SENT.value,
    sent_at=bindparam("b_now"),
    updated_at=bindparam("b_now"),
    provider=bindparam("b_provider"),
    provider_message_id=bindparam("b_message_id"),
    attempts=bindparam("b_attempts"),
    sealed_content=None,
    pinned_provider=None,
    status_code=None,
    status_reason=None,
)
_SENT = update(Notification.__table__).where(*_SENT_WHERE).values(**_SENT_VALUES)

Sent = tuple[str, str, str, int, datetime | None]  # id, provider, message id, attempts, created_at


def mark_sent(session: Session, sent: Sequence[Sent], now: datetime) -> None:
    """``sending -> sent`` for many notifications: (id, provider, message id, attempts,
    created_at or None). The same guard as :func:`move` (only from ``sending``), without a
    statement per row: on PostgreSQL, when every created_at is known, one UPDATE joined to
    the rows' arrays, pruned to their partitions (a task's whole group in one statement);
    else one executemany."""
    if not sent:
        return
    if by_id.prunes(session) and all(c is not None for *_, c in sent):
        ids = [i for i, *_ in sent]
        hint = [c for *_, c in sent if c is not None]
        stmt = _SENT_UNNEST.where(*by_id.conditions(session, ids, hint))
        session.execute(stmt, _sent_params(sent, now))
        return
    session.execute(
        _SENT,
        [
            {"b_id": i, "b_now": now, "b_provider": p, "b_message_id": m, "b_attempts": n}
            for i, p, m, n, _ in sent
        ],
    )


def _sent_params(sent: Sequence[Sent], now: datetime) -> dict[str, Any]:
    """The arrays of :data:`_SENT_UNNEST`: one cached statement whatever the group's size."""
    return {
        "b_ids": [i for i, *_ in sent],
        "b_providers": [p for _, p, *_ in sent],
        "b_message_ids": [m for _, _, m, *_ in sent],
        "b_attempts": [n for *_, n, _ in sent],
        "b_created": [c for *_, c in sent],
        "b_now": now,
    }


def _unnest(name: str, item: Any) -> Any:
    return func.unnest(bindparam(name, type_=ARRAY(item)))


_ROWS = select(
    _unnest("b_ids", String).label("id"),
    _unnest("b_providers", String).label("provider"),
    _unnest("b_message_ids", String).label("message_id"),
    _unnest("b_attempts", Integer).label("attempts"),
    _unnest("b_created", DateTime(timezone=True)).label("created"),
).subquery("sent_rows")
_T = Notification.__table__
_SENT_UNNEST = (  # UPDATE ... FROM unnest(arrays): each row by id and its own created_at; the
    # conditions of notifier.notifications.by_id are added per call (they prune at plan time)
    update(_T)
    .where(
        _T.c.id == _ROWS.c.id,
        _T.c.created_at == _ROWS.c.created,
        _T.c.status == Status.SENDING.value,
    )
    .values(
        {
            **_SENT_VALUES,
            "provider": _ROWS.c.provider,
            "provider_message_id": _ROWS.c.message_id,
            "attempts": _ROWS.c.attempts,
        }
    )
)
