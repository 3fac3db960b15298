"""Outbound status webhooks to callers on the ``webhooks`` queue — issue 4."""

from __future__ import annotations

from celery import Celery


def register(app: Celery) -> None:
    """Register the webhook tasks on ``app``."""
