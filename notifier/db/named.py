"""Rows found by their unique ``name`` (templates, audiences): one query and one 404 for all."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from notifier.db.models import Base
from notifier.errors import ErrorCode, NotifierError

N = TypeVar("N", bound=Base)


def find_named(session: Session, model: type[N], name: str) -> N | None:
    """The row of ``model`` (a table with a unique ``name`` column) called ``name``."""
    column = inspect(model).columns["name"]
    return session.scalars(select(model).where(column == name)).first()


def get_named(session: Session, model: type[N], name: str, what: str) -> N:
    """The row, or the caller's 404 that says what was looked for."""
    row = find_named(session, model, name)
    if row is None:
        raise NotifierError(ErrorCode.NOT_FOUND, f"no {what} named {name!r}")
    return row
