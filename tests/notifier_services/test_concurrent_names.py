"""Two creations of a new name in one service at the same moment, on PostgreSQL: the second
waits on the unique key while the first is uncommitted, then uses the first's row (a template's
version 2, the same audience), never a 500 from the unique key's IntegrityError."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from notifier.campaigns import contacts
from notifier.content import templates
from notifier.db.migrate import upgrade
from notifier.db.models import DEFAULT_SERVICE_ID
from notifier.db.session import transaction
from notifier.runtime import Runtime
from providers.interface import Channel
from tests.factories import make_settings
from tests.services import fresh_postgres_database

pytestmark = pytest.mark.postgres
CONTENT = {"en": {"subject": "S", "body": "B"}}


@pytest.fixture
def pg_runtime(tmp_path) -> Iterator[Runtime]:
    with fresh_postgres_database() as url:
        upgrade(url)
        rt = Runtime.build(make_settings(tmp_path, database_url=url))
        yield rt
        rt.close()


def _waiting_on_a_lock(runtime: Runtime) -> bool:
    with runtime.engine.connect() as c:
        waiting = c.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        ).scalar()
    return bool(waiting)


def test_a_concurrent_first_save_becomes_the_next_version(pg_runtime: Runtime) -> None:
    rt = pg_runtime
    second: dict[str, object] = {}

    def save() -> None:
        try:
            with transaction(rt.sessions) as session:
                version = templates.save_version(
                    session, "receipt", Channel.EMAIL, "en", CONTENT, DEFAULT_SERVICE_ID
                )
                second["version"] = version.version
        except Exception as e:  # reported below
            second["error"] = e

    with transaction(rt.sessions) as session:
        first = templates.save_version(
            session, "receipt", Channel.EMAIL, "en", CONTENT, DEFAULT_SERVICE_ID
        )
        thread = threading.Thread(target=save)
        thread.start()
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock(rt):  # the second insert waits on our uncommitted key
            assert time.monotonic() < deadline, "the second save never waited on the key"
            time.sleep(0.02)
        assert first.version == 1
    thread.join(10)
    assert second == {"version": 2}
    with rt.sessions() as session:
        assert templates.get_template(session, "receipt").latest_version == 2


def test_a_concurrent_new_audience_is_the_same_audience(pg_runtime: Runtime) -> None:
    rt = pg_runtime
    second: dict[str, object] = {}

    def create() -> None:
        try:
            with transaction(rt.sessions) as session:
                second["id"] = contacts.get_or_create_audience(session, "news").id
        except Exception as e:  # reported below
            second["error"] = e

    with transaction(rt.sessions) as session:
        first = contacts.get_or_create_audience(session, "news").id
        thread = threading.Thread(target=create)
        thread.start()
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock(rt):
            assert time.monotonic() < deadline, "the second creation never waited on the key"
            time.sleep(0.02)
    thread.join(10)
    assert second == {"id": first}
