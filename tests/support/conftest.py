"""Support console fixtures: staff accounts, a worker app to produce real timelines, clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery
from fastapi.testclient import TestClient

from notifier.api.app import create_app
from notifier.runtime import Runtime
from notifier.support.models import StaffRole
from tests.support.console import ADMIN_EMAIL, SUPPORT_EMAIL, make_staff, signed_in
from workers.app import create_worker_app


@pytest.fixture
def worker_app(runtime, settings) -> Iterator[Celery]:
    app = create_worker_app(settings, pool_size=5)
    yield app
    app.delivery.close()
    app.runtime.close()


@pytest.fixture
def staff(runtime: Runtime) -> None:
    make_staff(runtime, SUPPORT_EMAIL, StaffRole.SUPPORT)
    make_staff(runtime, ADMIN_EMAIL, StaffRole.ADMIN)


@pytest.fixture
def console(runtime: Runtime, staff) -> Iterator[TestClient]:
    """A browser-like client signed in as support; ``console.csrf`` holds the form token."""
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as c:
        c.csrf = signed_in(c, SUPPORT_EMAIL)
        yield c


@pytest.fixture
def admin_console(runtime: Runtime, staff) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as c:
        c.csrf = signed_in(c, ADMIN_EMAIL)
        yield c


@pytest.fixture
def support_key(runtime: Runtime) -> dict[str, str]:
    from tests.factories import api_key

    return {"Authorization": f"Bearer {api_key(runtime, name='helpdesk', scopes=['support:read'])}"}
