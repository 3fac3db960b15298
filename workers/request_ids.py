"""Carry the request id from the API into tasks' log lines (Celery message headers)."""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, task_prerun

from notifier.logcontext import request_id_var

_tokens: dict[str, Any] = {}


def _before(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    request_id = getattr(task.request, "request_id", None) if task is not None else None
    if task_id and request_id:
        _tokens[task_id] = request_id_var.set(request_id)


def _after(task_id: str | None = None, **_: Any) -> None:
    token = _tokens.pop(task_id, None) if task_id else None
    if token is not None:
        request_id_var.reset(token)


def install() -> None:
    """Connect once per process (signals are process-wide; ``dispatch_uid`` deduplicates)."""
    task_prerun.connect(_before, weak=False, dispatch_uid="notifier.request_ids.before")
    task_postrun.connect(_after, weak=False, dispatch_uid="notifier.request_ids.after")
