"""Text that PostgreSQL can store: no NUL characters, no lone UTF-16 surrogates.

JSON allows both (``"\\u0000"``, ``"\\ud800"``) and Python strings hold them, but a PostgreSQL
``text`` or ``jsonb`` value cannot, and the insert fails. Failing at the insert is too late: the
group commit writes many callers' rows in one transaction. So every string a request carries
(fields, ``data`` keys and values at any depth, headers we keep, query parameters and path ids)
is checked here first and refused with a 422 ``validation_error`` naming the field.
"""

from __future__ import annotations

from typing import Any

from notifier.errors import ErrorCode, NotifierError, field_error

UNSTORABLE = "unstorable_text"


def _bad(text: str) -> bool:
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return False


def find_unstorable(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string in ``value`` that cannot be stored, else None."""
    if isinstance(value, str):
        return path or "value" if _bad(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _bad(key):
                return path or "key"
            found = find_unstorable(item, where)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_unstorable(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


def unstorable_error(field: str) -> NotifierError:
    error = field_error(
        ErrorCode.VALIDATION_ERROR,
        field,
        f"{field} contains a NUL character or an unpaired surrogate, which cannot be stored",
    )
    error.details[0].code = UNSTORABLE
    return error


def require_storable(value: Any, field: str = "") -> None:
    found = find_unstorable(value, field)
    if found is not None:
        raise unstorable_error(found)
