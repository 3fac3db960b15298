"""Which service's rows a caller may see: the one mapping from a caller to an ownership
condition, used by every read and action of the API.

A key sees the rows of its own service; a platform admin (``services:manage``) sees every
service's. A row of another service is answered exactly like a row that does not exist (404,
never 403), so ids and names do not leak across services. ``scope`` is the service id a query is
limited to, or ``ALL_SERVICES`` (None) for a platform admin and for the platform's own jobs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Caller

ALL_SERVICES: str | None = None
NO_SERVICE = ""  # no row belongs to it


def scope_of(caller: Caller) -> str | None:
    """The service id the caller's reads are limited to; ``ALL_SERVICES`` for a platform admin."""
    return scope_for(caller.service.id, platform_admin=caller.is_platform_admin)


def scope_for(service_id: str | None, *, platform_admin: bool) -> str | None:
    """The scope of anyone who belongs to ``service_id`` (an API key, a console staff member):
    that service, or ``ALL_SERVICES`` for a platform admin. Someone of no service who is not a
    platform admin sees nothing (``NO_SERVICE``), never everything: the scope fails closed."""
    if platform_admin:
        return ALL_SERVICES
    return NO_SERVICE if service_id is None else service_id


def owned(
    column: ColumnElement[Any] | InstrumentedAttribute[Any], scope: str | None
) -> list[ColumnElement[bool]]:
    """The WHERE conditions that keep a query to ``scope``'s rows (none for every service)."""
    return [] if scope is ALL_SERVICES else [column == scope]


def visible(service_id: str | None, scope: str | None) -> bool:
    """Whether a row owned by ``service_id`` may be shown within ``scope``."""
    return scope is ALL_SERVICES or service_id == scope


def require_visible(service_id: str | None, scope: str | None, message: str) -> None:
    """The 404 a row of another service gets, the same as a row that does not exist."""
    if not visible(service_id, scope):
        raise NotifierError(ErrorCode.NOT_FOUND, message)


def sender_key(caller: Caller) -> str | None:
    """The API key whose notifications the caller reads through ``/v1/notifications``: its own,
    as before services existed (so a key inside its service sees what it always saw), or every
    key's (None) for a platform admin."""
    return None if caller.is_platform_admin else caller.id


def require_sent_by(caller: Caller, api_key_id: str | None, service_id: str | None) -> None:
    """The 404 for a notification that is not the caller's to read or cancel."""
    key = sender_key(caller)
    if (key is not None and api_key_id != key) or not visible(service_id, scope_of(caller)):
        raise NotifierError(ErrorCode.NOT_FOUND, "no such notification for this API key")


def owned_or_global(
    column: ColumnElement[Any] | InstrumentedAttribute[Any], scope: str | None
) -> list[ColumnElement[bool]]:
    """Like :func:`owned`, and the rows no service owns (global suppressions) too."""
    return [] if scope is ALL_SERVICES else [or_(column.is_(None), column == scope)]
