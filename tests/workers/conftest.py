"""Worker fixtures: a worker Celery app on the test database, with the outbox or scripted providers."""

from __future__ import annotations

from typing import Iterator

import pytest
from celery import Celery

from workers.app import create_worker_app


@pytest.fixture
def worker_app(runtime, settings) -> Iterator[Celery]:  # type: ignore[no-untyped-def]
    app = create_worker_app(settings, pool_size=5)
    yield app
    app.delivery.close()  # type: ignore[attr-defined]
    app.runtime.close()  # type: ignore[attr-defined]
