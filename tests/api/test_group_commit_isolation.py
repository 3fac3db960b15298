"""A row that cannot be stored fails only its own request, not the others of its group commit.

The group is forced: the database is locked by another connection while the first request's
write waits, so the next three requests queue up and are written as one group."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from notifier.api.app import create_app
from notifier.db.migrate import upgrade
from notifier.db.models import Notification
from notifier.notifications.schemas import EmailRequest
from notifier.runtime import Runtime
from tests.factories import api_key, email, make_settings
from tests.services import fresh_postgres_database


@contextmanager
def sqlite_locked(runtime: Runtime) -> Iterator[None]:
    connection = sqlite3.connect(
        runtime.settings.database_url.removeprefix("sqlite:///"), isolation_level=None
    )
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


@contextmanager
def postgres_locked(runtime: Runtime) -> Iterator[None]:
    engine = create_engine(runtime.settings.database_url)
    with engine.connect() as connection:
        connection.execute(text("LOCK TABLE notifications IN EXCLUSIVE MODE"))
        yield
        connection.rollback()
    engine.dispose()


def _in_thread(future: object) -> Future[Any]:
    """A future of the committer's thread: submitted with no running event loop."""
    assert isinstance(future, Future)
    return future


def _caller(runtime: Runtime, key: str):
    with runtime.sessions() as session:
        return runtime.authenticator.authenticate(session, f"Bearer {key}")


def _group_with_one_bad_row(runtime: Runtime, locked, spoil, caplog) -> None:
    caller = _caller(runtime, api_key(runtime))
    intake = runtime.intake
    first = intake.prepare(caller, EmailRequest.model_validate(email()))
    good = [
        intake.prepare(caller, EmailRequest.model_validate(email(to=f"u{i}@example.com")))
        for i in range(2)
    ]
    bad = intake.prepare(caller, EmailRequest.model_validate(email(to="bad-row@example.com")))
    spoil(bad, first)
    caplog.set_level(logging.WARNING, logger="notifier.intake.group_commit")
    with locked(runtime):
        waiting = _in_thread(intake.committer.submit(first))
        time.sleep(0.3)  # the writer holds `first` and waits for the lock
        futures = [_in_thread(intake.committer.submit(p)) for p in (good[0], bad, good[1])]
    assert waiting.result(timeout=30) is first
    assert futures[0].result(timeout=30) is good[0]
    assert futures[2].result(timeout=30) is good[1]
    with pytest.raises(Exception):  # noqa: B017 - the database's own error, whatever its class
        futures[1].result(timeout=30)
    with runtime.sessions() as s:
        ids = set(s.scalars(select(Notification.id)))
    assert ids == {first.id, good[0].id, good[1].id}
    assert "intake.group_commit.isolating" in caplog.text  # the three really were one group


def test_sqlite_one_unstorable_row_fails_alone(runtime, caplog):
    def duplicate_id(bad, first):
        bad.row["id"] = first.id  # a primary-key violation: a real database error

    _group_with_one_bad_row(runtime, sqlite_locked, duplicate_id, caplog)


@pytest.fixture
def pg_runtime(tmp_path: Path) -> Iterator[Runtime]:
    with fresh_postgres_database() as url:
        settings = make_settings(tmp_path, database_url=url)
        upgrade(url)
        runtime = Runtime.build(settings)
        yield runtime
        runtime.intake.committer.close()
        runtime.close()


def test_postgres_a_nul_row_fails_alone(pg_runtime, caplog):
    def nul_reference(bad, first):
        bad.row["reference"] = "order-\x00"  # what validation now refuses, forced past it

    _group_with_one_bad_row(pg_runtime, postgres_locked, nul_reference, caplog)


def test_postgres_nul_rows_from_one_key_never_fail_another_key(pg_runtime):
    """The filed scenario: key A sends NUL references while key B sends valid requests."""
    hostile, valid = api_key(pg_runtime, "a"), api_key(pg_runtime, "b")
    answers: dict[str, list[int]] = {"a": [], "b": []}
    with TestClient(create_app(runtime=pg_runtime), raise_server_exceptions=False) as client:

        def send(name: str, key: str, payload: dict, n: int) -> None:
            for _ in range(n):
                response = client.post(
                    "/v1/notifications", json=payload, headers={"Authorization": f"Bearer {key}"}
                )
                answers[name].append(response.status_code)

        threads = [
            threading.Thread(target=send, args=("a", hostile, email(reference="x\x00"), 60))
            for _ in range(3)
        ]
        threads += [threading.Thread(target=send, args=("b", valid, email(), 50)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        listed = client.get(
            "/v1/notifications?reference=x%00", headers={"Authorization": f"Bearer {valid}"}
        )
    assert set(answers["a"]) == {422}
    assert answers["b"] == [202] * 200
    assert listed.status_code == 422  # a data error, never database_unavailable
    with pg_runtime.sessions() as s:
        assert (
            s.scalar(select(Notification.id).where(Notification.reference.is_not(None)).limit(1))
            is not None
        )
        assert len(list(s.scalars(select(Notification.id)))) == 200
