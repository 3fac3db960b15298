"""Rows found by their ``name`` (templates, audiences): one query and one 404 for all.

Both belong to a service and a name is unique within its service only (unique on
``(service_id, name)``): ``scope`` limits the lookup to one service's rows (see
:mod:`notifier.ownership`), so another service's row is the same 404 as a missing one. A
platform admin's unscoped lookup of a name two services use finds the default service's, else
the lowest service id's (deterministic); another of them is reached with a key of its service."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from notifier.db.models import DEFAULT_SERVICE_ID, Base
from notifier.errors import ErrorCode, NotifierError
from notifier.ownership import ALL_SERVICES, owned

N = TypeVar("N", bound=Base)


def find_named(
    session: Session, model: type[N], name: str, scope: str | None = ALL_SERVICES
) -> N | None:
    """The row of ``model`` (a table unique on ``service_id`` and ``name``) called ``name``,
    within ``scope``."""
    columns = inspect(model).columns
    service = columns["service_id"]
    stmt = (
        select(model)
        .where(columns["name"] == name, *owned(service, scope))
        .order_by((service != DEFAULT_SERVICE_ID), service)
    )
    return session.scalars(stmt).first()


def get_named(
    session: Session, model: type[N], name: str, what: str, scope: str | None = ALL_SERVICES
) -> N:
    """The row, or the caller's 404 that says what was looked for."""
    row = find_named(session, model, name, scope)
    if row is None:
        raise NotifierError(ErrorCode.NOT_FOUND, f"no {what} named {name!r}")
    return row
