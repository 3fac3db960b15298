"""Receipt processing tasks on the ``receipts`` queue — issue 3."""

from __future__ import annotations

from celery import Celery


def register(app: Celery) -> None:
    """Register the receipt tasks on ``app``."""
