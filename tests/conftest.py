"""Shared fixtures: settings on a temporary SQLite file, a migrated runtime, an API client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from notifier.api.app import create_app
from notifier.db.migrate import upgrade
from notifier.runtime import Runtime
from tests.factories import api_key, make_settings


@pytest.fixture
def settings(tmp_path: Path):
    return make_settings(tmp_path)


@pytest.fixture
def runtime(settings) -> Iterator[Runtime]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    rt = Runtime.build(settings)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def key(runtime: Runtime) -> str:
    return api_key(runtime)


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def worker_app(runtime, settings):
    """A worker Celery app on the test database, delivering through the outbox provider."""
    from workers.app import create_worker_app

    app = create_worker_app(settings, pool_size=5)
    yield app
    app.delivery.close()
    app.runtime.close()
