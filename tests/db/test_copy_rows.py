"""``repository.insert_notifications``: the rows and their events written by COPY on PostgreSQL
(the notifications in binary format, the events in text) or a multi-row insert elsewhere come
back as they were built."""

from __future__ import annotations

from sqlalchemy import select

from notifier.db.models import Notification
from notifier.db.session import transaction
from notifier.notifications import repository
from tests.factories import event_row, notification_row


def test_insert_notifications_keeps_json_text_and_nulls(runtime):
    """The rows' JSON columns as written by COPY (PostgreSQL) or a multi-row insert: the same
    values back, escapes and all; on PostgreSQL a None content is SQL NULL, not JSON null, as
    before (SQLAlchemy's insert on SQLite has always written JSON null)."""
    awkward = {
        "subject": 'tab\there, "quoted", back\\slash',
        "body": "line one\nline two\r\nüñïçødé ✓ \\N",
        "data": {"nested": [1, 2.5, None, True]},
    }
    rows = [
        notification_row(content=awkward),
        notification_row(content=None),
    ]
    rows[0]["sensitive_fields"] = ["code", "token"]
    events = [event_row(r["id"], detail="accepted\tthen\\queued") for r in rows]
    with transaction(runtime.sessions) as session:
        repository.insert_notifications(session, rows, events)
    with runtime.sessions() as session:
        stored = {n.id: n for n in session.scalars(select(Notification))}
        details = [e.detail for e in repository.events_of(session, rows[0]["id"])]
        null_content = session.scalar(
            select(Notification.id).where(
                Notification.id == rows[1]["id"], Notification.content.is_(None)
            )
        )
    assert stored[rows[0]["id"]].content == awkward
    assert stored[rows[0]["id"]].sensitive_fields == ["code", "token"]
    assert stored[rows[1]["id"]].content is None
    if runtime.engine.dialect.name == "postgresql":
        assert null_content == rows[1]["id"]
    assert details == ["accepted\tthen\\queued"]
