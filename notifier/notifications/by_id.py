"""Addressing notifications by id so that PostgreSQL reads one partition, not all of them.

On PostgreSQL ``notifications`` is partitioned by ``created_at`` (``notifier/db/partitions.py``):
a statement that names only ids cannot be pruned, so it plans and opens every partition (38
index scans and their locks for one row, about 19 times the cost of the same lookup on a plain
table: see bench/README.md). A statement that also names the rows' ``created_at`` values is
pruned to the partitions holding them, at plan time.

So every by-id statement of the repository and the queries takes its conditions from
:func:`conditions`, with an optional *hint*: the ``created_at`` values of the rows addressed (for
one row its exact value; for a batch any collection covering them: ``created_at IN (...)``, one
partition per distinct day). The delivery task carries the hint beside its ids
(:mod:`notifier.publishing`); once a worker has loaded its rows it has the exact values.

A hint narrows, it never widens: a row whose ``created_at`` is not among the hint's values is
not matched. Hints are therefore only ever values read from the rows themselves (intake's own
row, a row the sweeper or the worker loaded), and a task whose hint were wrong would only leave
its rows ``queued`` for the sweeper, which re-publishes them with the values it reads. Without a
hint (a message published before hints existed) the statement names ids only, as before. SQLite
is not partitioned: there the hint is ignored and the statements are unchanged.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.db.models import Notification

Hint = Collection[datetime] | None  # the rows' created_at values, or None: not known


def prunes(session: Session) -> bool:
    """Whether a hint is used on this session's database (PostgreSQL, where tables may be
    partitioned; on plain PostgreSQL tables the extra condition is one more filter on the row
    found by its primary key)."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def conditions(
    session: Session, ids: Sequence[str], hint: Hint = None
) -> list[ColumnElement[bool]]:
    """The WHERE conditions naming these notifications: ``id IN ids`` and, where it prunes and
    a hint is given, ``created_at IN hint``."""
    where: list[ColumnElement[bool]] = [Notification.id.in_(list(ids))]
    if hint and prunes(session):
        where.append(Notification.created_at.in_(sorted(set(hint))))
    return where
