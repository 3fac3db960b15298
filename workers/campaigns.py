"""Campaign run tasks on the ``campaigns`` queue — issue 6."""

from __future__ import annotations

from celery import Celery


def register(app: Celery) -> None:
    """Register the campaign tasks on ``app``."""
