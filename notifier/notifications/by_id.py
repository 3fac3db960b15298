"""Addressing notifications by id so that PostgreSQL reads one partition, not all of them.

On PostgreSQL ``notifications`` is partitioned by ``created_at`` (``notifier/db/partitions.py``):
a statement that names only ids cannot be pruned, so it plans and opens every partition (38
index scans and their locks for one row, about 19 times the cost of the same lookup on a plain
table: see bench/README.md). A statement that also names the rows' ``created_at`` values is
pruned to the partitions holding them, at plan time.

So every by-id statement of the repository and the queries takes its conditions from
:func:`conditions`, with an optional *hint*: the ``created_at`` values of the rows addressed (for
one row its exact value; for a batch the values of its rows). The delivery task carries the hint
beside its ids (:mod:`notifier.publishing`); once a worker has loaded its rows it has the exact
values.

On PostgreSQL the ids are one array parameter (``id = ANY(:ids)``) and the hint becomes the
ranges its values fall in (``created_at BETWEEN :lo AND :hi``; values more than
:data:`GAP` apart start a new range, so a range never spans a partition holding none of them:
partitions are at least a day). Both keep the statement's text the same whatever the group's
size, so it is parsed and cached once; and the primary key's index is probed once per id. The
earlier ``created_at IN (each value)`` made PostgreSQL (before 17) walk every (id, created_at)
pair of the two lists: 2,500 probes for a task of 50, and without statistics on a new
partition the planner chose the status index instead, reading every queued row of the day for
each claim (bench/README.md).

A lookup of one id with nothing else (the API's and the console's "get by id") takes its hint
from the id, which is made from the row's ``created_at`` (:func:`around`), and looks once more
without it when that finds nothing.

A hint narrows, it never widens beyond its values' ranges: a row created outside them is not
matched. Hints are therefore only ever values read from the rows themselves (intake's own row, a
row the sweeper or the worker loaded), and a task whose hint were wrong would only leave its rows
``queued`` for the sweeper, which re-publishes them with the values it reads. Without a hint (a
message published before hints existed) the statement names ids only, as before. SQLite is not
partitioned: there the hint is ignored and the ids are a plain ``IN``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import String, and_, any_, bindparam, or_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.db.models import Notification, id_time

Hint = Collection[datetime] | None  # the rows' created_at values, or None: not known

GAP = timedelta(hours=1)  # hint values further apart than this are two ranges
SLACK = timedelta(seconds=1)  # around an id's time: its created_at is that time, to the ms


def prunes(session: Session) -> bool:
    """Whether a hint is used on this session's database (PostgreSQL, where tables may be
    partitioned; on plain PostgreSQL tables the extra condition is one more filter on the row
    found by its primary key)."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def conditions(
    session: Session, ids: Sequence[str], hint: Hint = None
) -> list[ColumnElement[bool]]:
    """The WHERE conditions naming these notifications: the ids and, where it prunes and a hint
    is given, the ranges of its ``created_at`` values (see the module docstring)."""
    if not prunes(session):
        return [Notification.id.in_(list(ids))]
    where: list[ColumnElement[bool]] = [
        Notification.id == any_(bindparam(None, list(ids), type_=ARRAY(String), unique=True))
    ]
    if hint:
        where.append(or_(*(_between(lo, hi) for lo, hi in ranges(hint))))
    return where


def ranges(hint: Collection[datetime]) -> list[tuple[datetime, datetime]]:
    """The hint's values as ranges, a new one wherever two neighbours are over :data:`GAP`
    apart."""
    values = sorted(set(hint))
    found = [(values[0], values[0])]
    for value in values[1:]:
        lo, hi = found[-1]
        if value - hi > GAP:
            found.append((value, value))
        else:
            found[-1] = (lo, value)
    return found


def _between(lo: datetime, hi: datetime) -> ColumnElement[bool]:
    if lo == hi:
        return Notification.created_at == lo
    return and_(Notification.created_at >= lo, Notification.created_at <= hi)


def around(notification_id: str) -> Hint:
    """A hint read from the id itself: a time-ordered id is made from its row's ``created_at``
    (:func:`notifier.db.models.new_id`), so the row is within :data:`SLACK` of the id's time.
    Unlike a hint read from the row, this one can be wrong (a row whose ``created_at`` was set
    apart from its id: an import, a test backdating rows), so a lookup that uses it and finds
    nothing looks again without it (:func:`notifier.notifications.repository.get`). None for an
    id that carries no time."""
    made = id_time(notification_id)
    return None if made is None else [made - SLACK, made + SLACK]
