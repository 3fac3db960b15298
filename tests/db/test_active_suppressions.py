"""``repository.active_suppressions``: light rows of the active suppressions of a group's
recipients, newest first, on SQLite and PostgreSQL; one statement text on PostgreSQL whatever the
group's size; and the group commit's decisions made from them (an erased opt-out matches by its
fingerprint, a service's own suppression only that service's sends, a transactional send only
the blocking reasons)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, insert, select

from notifier.db.models import DEFAULT_SERVICE_ID, Notification, Suppression
from notifier.db.session import transaction
from notifier.notifications import repository
from notifier.notifications.schemas import EmailRequest
from notifier.runtime import Runtime
from notifier.statuses import Status
from notifier.suppressions import ActiveSuppression, blocking_suppression, fingerprint
from providers.interface import Category
from tests.factories import api_key, email

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _suppress(runtime: Runtime, *rows: dict[str, object]) -> None:
    with transaction(runtime.sessions) as session:
        session.execute(insert(Suppression), list(rows))


def _row(recipient: str, reason: str, minutes: int, **values: object) -> dict[str, object]:
    return {
        "channel": "email",
        "recipient": recipient,
        "reason": reason,
        "created_at": T0 + timedelta(minutes=minutes),
        **values,
    }


def test_light_rows_newest_first_with_fingerprints_and_without_lifted_or_others(runtime):
    _suppress(
        runtime,
        _row("ada@example.com", "unsubscribed", 1, service_id="svc-a"),
        _row("ada@example.com", "hard_bounce", 3),
        _row(fingerprint("email", "bob@example.com"), "complaint", 2),  # erased: a fingerprint
        _row("cy@example.com", "manual", 4, lifted_at=T0 + timedelta(minutes=5)),  # lifted
        _row("ada@example.com", "invalid_address", 6, channel="sms"),  # another channel
        _row("dee@example.com", "hard_bounce", 7),  # not asked for
    )
    pairs = [
        ("email", "ada@example.com"),
        ("email", "bob@example.com"),
        ("email", "cy@example.com"),
        ("email", "ada@example.com"),  # a repeat changes nothing
    ]
    with runtime.sessions() as session:
        found = repository.active_suppressions(session, pairs)
        assert repository.active_suppressions(session, []) == []
    assert all(isinstance(s, ActiveSuppression) for s in found)
    assert [(s.recipient, s.reason, s.service_id) for s in found] == [
        ("ada@example.com", "hard_bounce", None),
        (fingerprint("email", "bob@example.com"), "complaint", None),
        ("ada@example.com", "unsubscribed", "svc-a"),
    ]
    assert [s.created_at for s in found] == [T0 + timedelta(minutes=m) for m in (3, 2, 1)]
    assert all(s.created_at.tzinfo is not None for s in found)

    def blocking(recipient: str, category: Category, service: str) -> str | None:
        hit = blocking_suppression(found, "email", recipient, category, service)
        return hit.reason if hit else None

    assert blocking("ada@example.com", Category.TRANSACTIONAL, "svc-b") == "hard_bounce"
    assert blocking("bob@example.com", Category.PROMOTIONAL, "svc-b") == "complaint"
    assert blocking("cy@example.com", Category.PROMOTIONAL, "svc-b") is None  # lifted


def test_the_same_statement_whatever_the_group_size(runtime):
    """On PostgreSQL the recipients are one bound array: the same text for 1 and for 300
    recipients (cached by SQLAlchemy and prepared by psycopg); elsewhere an expanding IN."""
    _suppress(runtime, _row("u7@example.com", "hard_bounce", 1))
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if "suppressions" in statement:
            statements.append(statement)

    engine = runtime.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with runtime.sessions() as session:
            sizes = []
            for n in (1, 300):
                found = repository.active_suppressions(
                    session, [("email", f"u{i}@example.com") for i in range(7, 7 + n)]
                )
                sizes.append([s.recipient for s in found])
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert sizes == [["u7@example.com"], ["u7@example.com"]]
    assert len(statements) == 2
    if engine.dialect.name == "postgresql":
        assert statements[0] == statements[1]
        assert "ANY" in statements[0] and " IN " not in statements[0]


def test_group_commit_decides_from_them(runtime):
    """Through the intake's group write: a global bounce stops every send, another service's
    unsubscribe stops none of this one's, an erased STOP's fingerprint still stops, a
    transactional send ignores a promotional-only reason."""
    _suppress(
        runtime,
        _row("bounced@example.com", "hard_bounce", 1),
        _row("theirs@example.com", "unsubscribed", 2, service_id="another-service"),
        _row("mine@example.com", "unsubscribed", 3, service_id=DEFAULT_SERVICE_ID),
        _row(fingerprint("email", "erased@example.com"), "complaint", 4),
    )
    with runtime.sessions() as session:
        caller = runtime.authenticator.authenticate(session, f"Bearer {api_key(runtime)}")
    intake = runtime.intake

    def prepared(to: str, category: str = "transactional"):
        return intake.prepare(caller, EmailRequest.model_validate(email(to=to, category=category)))

    group = {
        "bounced": prepared("bounced@example.com"),
        "theirs": prepared("theirs@example.com", "promotional"),
        "mine_promotional": prepared("mine@example.com", "promotional"),
        "mine_transactional": prepared("mine@example.com"),
        "erased": prepared("erased@example.com"),
        "free": prepared("free@example.com"),
    }
    intake.store_group(list(group.values()))
    with runtime.sessions() as session:
        stored = {
            n.id: (n.status, n.status_code)
            for n in session.scalars(select(Notification).where(Notification.id.is_not(None)))
        }
    status = {name: stored[p.id][0] for name, p in group.items()}
    assert status == {
        "bounced": Status.SUPPRESSED.value,
        "theirs": Status.QUEUED.value,
        "mine_promotional": Status.SUPPRESSED.value,
        "mine_transactional": Status.QUEUED.value,
        "erased": Status.SUPPRESSED.value,
        "free": Status.QUEUED.value,
    }
