"""Writes on notifications and their events, the one guarded status move, and the lookups by id.

Every status change goes through :func:`move`, which enforces the table of allowed moves in
``notifier.statuses`` (and wipes sealed content on a final status, and owes the caller a status
webhook). Selections for the workers are in :mod:`notifier.notifications.queries`, listings in
:mod:`notifier.notifications.listing`, the status-webhook outbox in
:mod:`notifier.notifications.webhook_outbox`, what retention and erasure remove in
:mod:`notifier.notifications.retention`. Suppressions and idempotency records, written
beside the notifications they concern, are here too.

Statements by id take an optional ``created``: the rows' ``created_at`` values, so that on
PostgreSQL they read only the partitions holding them (:mod:`notifier.notifications.by_id`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    Select,
    String,
    Table,
    any_,
    bindparam,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.db.models import (
    DeliveryEvent,
    IdempotencyRecord,
    Notification,
    Suppression,
    UTCDateTime,
    utcnow,
)
from notifier.notifications import by_id
from notifier.notifications.sent import Sent as Sent
from notifier.notifications.sent import mark_sent as mark_sent
from notifier.notifications.webhook_outbox import owe_webhooks as owe_webhooks
from notifier.notifications.webhook_outbox import owe_webhooks_matching
from notifier.statuses import ALLOWED_FROM, EventKind, Status
from notifier.suppressions import ActiveSuppression, scope_of_reason, suppression_forms


def insert_notifications(
    session: Session, rows: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]
) -> None:
    """One bulk write for the notifications and one for their first events: COPY on PostgreSQL
    (the cheapest path for the group commit, in both database and Python time), a multi-row
    insert elsewhere. The notifications go in COPY's binary format: every new row is built by
    :func:`notifier.notifications.rows.notification_row`, whose values have their columns'
    Python types, and a binary row costs about 40 % less client CPU than a text one."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        copy_rows(session, Notification.__table__, rows, binary=True)
        copy_rows(session, DeliveryEvent.__table__, events)
        return
    if rows:
        session.execute(insert(Notification), list(rows))
    if events:
        session.execute(insert(DeliveryEvent), list(events))


def copy_rows(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], *, binary: bool = False
) -> None:
    """COPY ``rows`` (dicts of column values) into ``table`` inside the session's transaction.

    Text format (the default) takes any value PostgreSQL can parse from its text, as an INSERT
    would: a JSON column's value is written as its JSON text (``json.dumps``, what psycopg's
    ``Json`` wrapper writes); NULL stays NULL. ``binary``: each column is dumped by the dumper of
    its declared type (JSON by psycopg's own ``json.dumps``), so every value must have its
    column's Python type (``str`` for text, ``int``, ``bool``, aware ``datetime``, a JSON
    value); a value that does not fails the COPY."""
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    driver = session.connection().connection.driver_connection
    if driver is None:  # a checked-out connection always has its DBAPI connection
        raise RuntimeError("the session's connection has no driver connection")
    names = ", ".join(columns)
    if binary:
        types = _postgresql_types(table, tuple(columns), session.get_bind().dialect)
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(types)
            write_row = copy.write_row
            for row in rows:
                write_row([row.get(c) for c in columns])
        return
    json_columns = _json_columns(table)
    encoded = [i for i, c in enumerate(columns) if c in json_columns]
    dumps = json.dumps
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy,
    ):
        write_row = copy.write_row
        for row in rows:
            values = [row.get(c) for c in columns]
            for i in encoded:
                if values[i] is not None:
                    values[i] = dumps(values[i])
            write_row(values)


@cache
def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


_PG_TYPE_NAMES = {"timestamp with time zone": "timestamptz", "float": "float8"}


@cache
def _postgresql_types(table: Table, columns: tuple[str, ...], dialect: Dialect) -> list[str]:
    """The PostgreSQL type names of these columns, from the model (varchar, text, integer,
    boolean, timestamptz, json, ...), made once per table and column list."""
    types = []
    for name in columns:
        declared = table.c[name].type.compile(dialect=dialect)
        base = declared.split("(", 1)[0].strip().lower()
        types.append(_PG_TYPE_NAMES.get(base, base))
    return types


def add_events(session: Session, events: Iterable[dict[str, Any]]) -> None:
    events = list(events)
    if not events:
        return
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        copy_rows(session, DeliveryEvent.__table__, events)
    else:
        session.execute(insert(DeliveryEvent), events)


def record_inflight(
    session: Session, ids: Sequence[str], provider: str, created: by_id.Hint = None
) -> None:
    """Write ahead that these ``sending`` notifications are about to be sent through
    ``provider``."""
    _set_while(session, ids, Status.SENDING, created, inflight_provider=provider)


def mark_republished(
    session: Session, ids: Sequence[str], now: datetime, created: by_id.Hint = None
) -> None:
    """Record that these still-``queued`` notifications were published again at ``now`` (not a
    status move: they stay ``queued``)."""
    _set_while(session, ids, Status.QUEUED, created, published_at=now)


def _set_while(
    session: Session, ids: Sequence[str], status: Status, created: by_id.Hint, **values: object
) -> None:
    """Set columns (never the status: that is :func:`move`) of the rows still in ``status``."""
    if ids:
        session.execute(
            update(Notification)
            .where(*by_id.conditions(session, ids, created), Notification.status == status.value)
            .values(**values),
            execution_options={"synchronize_session": False},
        )


def move(
    session: Session,
    ids: Sequence[str],
    target: Status,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    created: by_id.Hint = None,
    **values: object,
) -> list[str]:
    """Guarded status change: only rows whose current status may move to ``target`` (and that
    match ``where``) change. Returns the ids that moved. A final status wipes the sealed
    content here, for every caller: nothing will deliver it any more, so nothing keeps it.
    ``created``: the rows' created_at values, when known (see the module docstring)."""
    if not ids:
        return []
    if target.is_final:
        values["sealed_content"] = None
    stmt = (
        update(Notification)
        .where(
            *by_id.conditions(session, ids, created),
            Notification.status.in_([s.value for s in ALLOWED_FROM[target]]),
            *where,
        )
        .values(status=target.value, updated_at=utcnow(), **values)
        .returning(Notification.id)
    )
    moved = list(session.execute(stmt, execution_options={"synchronize_session": False}).scalars())
    if target.is_final and moved:
        owe_webhooks_matching(session, by_id.conditions(session, moved, created), target)
    return moved


def move_matching(
    session: Session,
    where: Sequence[ColumnElement[bool]],
    target: Status,
    event: tuple[EventKind, str],
    *,
    include_target: bool = False,
    **values: object,
) -> None:
    """:func:`move` for a set too large to list by id (a campaign's 100,000 notifications):
    every row matching ``where`` whose status may move to ``target`` moves, with one event
    (kind, detail) each, in one INSERT ... SELECT and one UPDATE. ``include_target``: rows
    already in ``target`` get the same values and event (a hold or its release, not a move)."""
    allowed = set(ALLOWED_FROM[target]) | ({target} if include_target else set())
    guarded = [*where, Notification.status.in_([s.value for s in allowed])]
    now = utcnow()
    kind, detail = event
    source = select(
        Notification.id,
        literal(now, UTCDateTime()),
        literal(kind.value),
        literal(target.value),
        literal(detail),
    ).where(*guarded)
    session.execute(
        insert(DeliveryEvent).from_select(
            ["notification_id", "created_at", "kind", "status", "detail"], source
        )
    )
    if target.is_final:
        values["sealed_content"] = None
        owe_webhooks_matching(session, guarded, target)
    session.execute(
        update(Notification).where(*guarded).values(status=target.value, updated_at=now, **values),
        execution_options={"synchronize_session": False},
    )


POSTPONE_BATCH = 5000


def postpone(session: Session, where: Sequence[ColumnElement[bool]], delta: timedelta) -> int:
    """Move the send time and the expiry of the notifications matching ``where`` that have a
    send time by ``delta`` (a throttled campaign's slots after a pause); returns how many. Row
    by row in executemany batches: the arithmetic stays in Python, the same on every database."""
    rows = session.execute(
        select(Notification.id, Notification.send_at, Notification.expires_at).where(
            *where, Notification.send_at.is_not(None)
        )
    ).all()
    statement = (
        update(Notification.__table__)
        .where(Notification.__table__.c.id == bindparam("row_id"))
        .values(send_at=bindparam("new_send_at"), expires_at=bindparam("new_expires_at"))
    )
    for start in range(0, len(rows), POSTPONE_BATCH):
        session.execute(
            statement,
            [
                {
                    "row_id": r.id,
                    "new_send_at": r.send_at + delta,
                    "new_expires_at": (r.expires_at + delta) if r.expires_at else None,
                }
                for r in rows[start : start + POSTPONE_BATCH]
            ],
        )
    return len(rows)


def touch(session: Session, notification_id: str, now: datetime) -> None:
    """Write the row's ``updated_at`` only: takes its row lock (the write lock on SQLite), so
    what the caller does next with this notification is serialised with anyone doing the same."""
    session.execute(
        update(Notification).where(Notification.id == notification_id).values(updated_at=now),
        execution_options={"synchronize_session": False},
    )


def get(session: Session, notification_id: str) -> Notification | None:
    """The notification of this id, or None. On PostgreSQL the partition its id's time names is
    read first (:func:`by_id.around`), and every partition only when that finds nothing (a row
    whose ``created_at`` was set apart from its id, a random id of an older row, none)."""
    hint = by_id.around(notification_id) if by_id.prunes(session) else None
    if hint is not None:
        stmt = select(Notification).where(*by_id.conditions(session, [notification_id], hint))
        found = session.scalars(stmt).first()
        if found is not None:
            return found
    return session.get(Notification, notification_id)


def events_of(session: Session, notification_id: str) -> list[DeliveryEvent]:
    stmt = (
        select(DeliveryEvent)
        .where(DeliveryEvent.notification_id == notification_id)
        .order_by(DeliveryEvent.created_at, DeliveryEvent.id)
    )
    return list(session.scalars(stmt))


def active_suppression(
    session: Session,
    channel: str,
    recipient: str,
    reasons: Iterable[str] | None = None,
    service_id: str | None = None,
) -> Suppression | None:
    """The newest active suppression of the recipient that applies to ``service_id``'s sends
    (global ones, and that service's own; every one when None)."""
    stmt = select(Suppression).where(
        Suppression.channel == channel,
        Suppression.recipient.in_(suppression_forms(channel, recipient)),
        Suppression.lifted_at.is_(None),
    )
    if service_id is not None:
        stmt = stmt.where(
            or_(Suppression.service_id.is_(None), Suppression.service_id == service_id)
        )
    if reasons is not None:
        stmt = stmt.where(Suppression.reason.in_(list(reasons)))
    return session.scalars(stmt.order_by(Suppression.created_at.desc()).limit(1)).first()


def active_suppressions(
    session: Session, channel_recipients: Iterable[tuple[str, str]]
) -> list[ActiveSuppression]:
    """Every active suppression of these (channel, recipient) pairs, newest first, in one query
    (an erased opt-out matches by its fingerprint: see notifier.suppressions).

    Light rows, not ORM objects: the group commit and the worker's claim run this for every
    group, and loading ``Suppression`` instances through the ORM, with an expanding IN of every
    form, was about a sixth of the intake writer's samples. One Core statement, built once: on
    PostgreSQL the channels and recipients are two bound arrays (``= ANY``), so its text is the
    same whatever the group's size and both SQLAlchemy's compiled cache and psycopg's prepared
    statements keep it; elsewhere an expanding IN."""
    pairs = {(c, form) for c, r in set(channel_recipients) for form in suppression_forms(c, r)}
    if not pairs:
        return []
    postgresql = session.bind is not None and session.bind.dialect.name == "postgresql"
    result = session.connection().execute(
        _ACTIVE_BY_ARRAYS if postgresql else _ACTIVE_BY_IN,
        {
            "channels": sorted({c for c, _ in pairs}),
            "recipients": sorted({r for _, r in pairs}),
        },
    )
    found = [ActiveSuppression(*row) for row in result if (row[0], row[1]) in pairs]
    return sorted(found, key=lambda s: s.created_at, reverse=True)


def _active_by(channels: ColumnElement[bool], recipients: ColumnElement[bool]) -> Select[Any]:
    table = Suppression.__table__
    return select(
        table.c.channel, table.c.recipient, table.c.reason, table.c.service_id, table.c.created_at
    ).where(channels, recipients, table.c.lifted_at.is_(None))


_SUPPRESSIONS = Suppression.__table__.c
_ACTIVE_BY_ARRAYS = _active_by(
    _SUPPRESSIONS.channel == any_(bindparam("channels", type_=ARRAY(String))),
    _SUPPRESSIONS.recipient == any_(bindparam("recipients", type_=ARRAY(String))),
)
_ACTIVE_BY_IN = _active_by(
    _SUPPRESSIONS.channel.in_(bindparam("channels", expanding=True)),
    _SUPPRESSIONS.recipient.in_(bindparam("recipients", expanding=True)),
)


def suppress(
    session: Session,
    channel: str,
    recipient: str,
    reason: str,
    detail: str | None,
    notification_id: str | None,
    service_id: str | None = None,
) -> None:
    """Suppress the recipient for ``reason``, in the scope the reason has for ``service_id``
    (:func:`notifier.suppressions.scope_of_reason`), unless it already is."""
    scope = scope_of_reason(reason, service_id)
    if active_suppression(session, channel, recipient, [reason], scope) is None:
        session.add(
            Suppression(
                channel=channel,
                recipient=recipient,
                reason=reason,
                detail=detail,
                notification_id=notification_id,
                service_id=scope,
            )
        )


def idempotency_record(session: Session, api_key_id: str, key: str) -> IdempotencyRecord | None:
    return session.get(IdempotencyRecord, (api_key_id, key))
