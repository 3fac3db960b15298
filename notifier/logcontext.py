"""Context carried into every log line: request id (API and the tasks it caused) and
notification id. Set with :func:`bind`; read by the JSON formatter in ``notifier.logs``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
notification_id_var: ContextVar[str | None] = ContextVar("notification_id", default=None)
_VARS = {"request_id": request_id_var, "notification_id": notification_id_var}


@contextmanager
def bind(**values: str | None) -> Iterator[None]:
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current() -> dict[str, str]:
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}
