"""Worker liveness: identities, the heartbeat writer (through a real database outage), the
readers, and the heartbeat of a real ``notifier worker`` process and of the embedded worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from notifier.db.migrate import upgrade
from notifier.db.models import WorkerHeartbeat, utcnow
from notifier.db.session import make_engine, make_sessionmaker, transaction
from notifier.liveness import (
    HeartbeatWriter,
    forget_workers,
    lapsed_worker_ids,
    live_workers,
    worker_identity,
)
from tests.services import PG_ADMIN_URL, fresh_postgres_database

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float = 20.0, step: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not true within {timeout} s: {condition}")


def rows(sessions) -> dict[str, WorkerHeartbeat]:
    with sessions() as session:
        return {row.worker_id: row for row in session.scalars(select(WorkerHeartbeat))}


def test_identity_is_stable_in_a_process_and_new_in_a_forked_child() -> None:
    identity = worker_identity()
    assert identity == worker_identity()
    assert identity.startswith(f"{socket.gethostname()[:70]}-{os.getpid()}-")
    assert len(identity) <= 100
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its identity and leave at once
        os.write(write, worker_identity().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    os.close(read)
    assert child.startswith(f"{socket.gethostname()[:70]}-{pid}-")
    assert child != identity
    assert worker_identity() == identity


def test_writer_upserts_while_running_and_deletes_its_row_on_stop(runtime) -> None:
    writer = HeartbeatWriter(
        runtime.sessions, "w-1", ["sms.transactional", "email.transactional"], 0.1
    )
    writer.start()
    first = wait_for(lambda: rows(runtime.sessions).get("w-1"))
    assert first.queues == ["email.transactional", "sms.transactional"]
    assert first.pid == os.getpid() and first.hostname == socket.gethostname()
    wait_for(lambda: rows(runtime.sessions)["w-1"].seen_at > first.seen_at)
    assert rows(runtime.sessions)["w-1"].started_at == first.started_at
    writer.stop()
    assert rows(runtime.sessions) == {}
    assert writer.beat() is False  # nothing lands after stop()
    assert rows(runtime.sessions) == {}


def test_readers_split_live_from_lapsed(runtime) -> None:
    now = utcnow()
    with transaction(runtime.sessions) as session:
        for worker_id, age, queues in (
            ("fresh", 1, ["a"]),
            ("late", 19, ["b"]),
            ("dead", 21, ["a"]),
        ):
            session.add(
                WorkerHeartbeat(
                    worker_id=worker_id,
                    hostname="h",
                    pid=1,
                    queues=queues,
                    started_at=now - timedelta(hours=1),
                    seen_at=now - timedelta(seconds=age),
                )
            )
    with runtime.sessions() as session:
        assert sorted(w.worker_id for w in live_workers(session, now, 20)) == ["fresh", "late"]
        assert lapsed_worker_ids(session, now, 20) == ["dead"]
        assert lapsed_worker_ids(session, now + timedelta(seconds=10), 20) == ["dead", "late"]
        assert live_workers(session, now + timedelta(minutes=1), 20) == []
    with transaction(runtime.sessions) as session:
        assert forget_workers(session, ["dead"]) == 1 and forget_workers(session, []) == 0
    assert sorted(rows(runtime.sessions)) == ["fresh", "late"]


@pytest.mark.postgres
def test_writer_keeps_beating_through_a_database_outage(caplog) -> None:
    """A real outage of the worker's database: connections refused and existing ones killed."""
    with fresh_postgres_database() as url:
        upgrade(url)
        name = url.rsplit("/", 1)[1]
        engine = make_engine(url, pool_size=2)
        sessions = make_sessionmaker(engine)
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        writer = HeartbeatWriter(sessions, "w-pg", ["maintenance"], 0.2)
        writer.start()
        try:
            wait_for(lambda: "w-pg" in rows(sessions))
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
            with caplog.at_level("WARNING", logger="notifier.liveness"):
                wait_for(
                    lambda: any(r.message == "worker.heartbeat.failed" for r in caplog.records),
                    timeout=10,
                )
            assert writer._thread is not None and writer._thread.is_alive()
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            after_outage = utcnow()

            def beat_again() -> bool:
                # behind PgBouncer the reader itself may be refused for a moment after the
                # database reopens (its server_login_retry): that is not yet, not a failure
                try:
                    row = rows(sessions).get("w-pg")
                except OperationalError:
                    return False
                return row is not None and row.seen_at > after_outage

            wait_for(beat_again)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            writer.stop()
            engine.dispose()
            admin.dispose()
        assert rows(make_sessionmaker(make_engine(url))) == {}


def _worker_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_ENV="test",
        NOTIFIER_DATA_DIR=str(tmp_path / "data"),
        NOTIFIER_BROKER_URL="memory://",
        NOTIFIER_WORKER_HEARTBEAT_SECONDS="0.5",
        NOTIFIER_WORKER_LAPSE_SECONDS="2",
        NOTIFIER_METRICS_PORT="0",
        NOTIFIER_LOG_LEVEL="WARNING",
    )
    return env


def _start_worker(tmp_path: Path, lanes: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "notifier"),
            "worker",
            "--lanes",
            lanes,
            "--concurrency",
            "2",
        ],
        cwd=tmp_path,
        env=_worker_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_a_notifier_worker_process_heartbeats_with_its_queues_and_leaves_cleanly(
    tmp_path: Path,
) -> None:
    database = tmp_path / "data" / "notifier.db"
    database.parent.mkdir(parents=True)
    upgrade(f"sqlite:///{database}")
    sessions = make_sessionmaker(make_engine(f"sqlite:///{database}"))
    process = _start_worker(tmp_path, "sms.transactional,maintenance")
    try:
        row = wait_for(lambda: next(iter(rows(sessions).values()), None), timeout=60)
        assert row.pid == process.pid
        assert row.queues == ["maintenance", "sms.transactional"]
        with sessions() as session:
            assert [w.worker_id for w in live_workers(session, utcnow(), 2)] == [row.worker_id]
        process.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        assert process.stderr is not None
        assert process.wait(60) == 0, process.stderr.read().decode()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert rows(sessions) == {}


def test_a_killed_worker_lapses(tmp_path: Path) -> None:
    database = tmp_path / "data" / "notifier.db"
    database.parent.mkdir(parents=True)
    upgrade(f"sqlite:///{database}")
    sessions = make_sessionmaker(make_engine(f"sqlite:///{database}"))
    process = _start_worker(tmp_path, "email.promotional")
    try:
        row = wait_for(lambda: next(iter(rows(sessions).values()), None), timeout=60)
    finally:
        process.kill()
        process.wait()
    with sessions() as session:
        assert lapsed_worker_ids(session, utcnow(), 2) == []
    time.sleep(2.5)
    with sessions() as session:
        assert lapsed_worker_ids(session, utcnow(), 2) == [row.worker_id]
        assert live_workers(session, utcnow(), 2) == []


def test_the_embedded_worker_heartbeats_with_its_queues(worker_app, runtime) -> None:
    from workers.embedded import embedded_worker

    with embedded_worker(worker_app, ["email.transactional", "webhooks"], concurrency=2):
        row = wait_for(lambda: next(iter(rows(runtime.sessions).values()), None))
        assert row.queues == ["email.transactional", "webhooks"]
        assert row.worker_id == worker_identity()
    assert rows(runtime.sessions) == {}


def test_a_lapse_shorter_than_two_heartbeats_is_refused(tmp_path: Path) -> None:
    from tests.factories import make_settings

    with pytest.raises(ValueError, match="NOTIFIER_WORKER_LAPSE_SECONDS"):
        make_settings(tmp_path, worker_heartbeat_seconds=5, worker_lapse_seconds=9)
    settings = make_settings(tmp_path)
    assert (settings.worker_heartbeat_seconds, settings.worker_lapse_seconds) == (5, 20)


def test_a_warm_shutdown_keeps_the_row_until_the_sends_in_flight_are_done(tmp_path: Path) -> None:
    """SIGTERM while a send is in flight: the worker stays live until the send finished (its
    claims must not look abandoned), then leaves the table; the provider got the message once."""
    from fastapi.testclient import TestClient

    from notifier.api.app import create_app
    from notifier.runtime import Runtime
    from tests.factories import api_key, email, make_settings
    from tests.fakes.smtp_server import FakeSmtpServer
    from tests.integration.providers_fakes import SENDER, write_providers_file
    from tests.private_services import require_private

    broker = require_private("redis")
    smtp = FakeSmtpServer().start()
    smtp.delay_data(4)
    settings = make_settings(tmp_path, broker_url=broker.url)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    providers = write_providers_file(
        tmp_path / "providers.toml",
        {
            "smtp": {
                "type": "smtp",
                "host": smtp.host,
                "port": smtp.port,
                "tls": "none",
                "from_address": SENDER,
            }
        },
        {"email.transactional": ["smtp"]},
    )
    env = {
        **_worker_env(tmp_path),
        "NOTIFIER_BROKER_URL": broker.url,
        "NOTIFIER_PROVIDERS_FILE": str(providers),
        "NOTIFIER_DATABASE_URL": settings.database_url,
    }
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "notifier"),
            "worker",
            "--lanes",
            "email.transactional,maintenance",
            "--concurrency",
            "2",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: rows(runtime.sessions), timeout=60)
        with TestClient(create_app(runtime=runtime)) as client:
            auth = {"Authorization": f"Bearer {api_key(runtime)}"}
            assert client.post("/v1/notifications", json=email(), headers=auth).status_code == 202
        wait_for(lambda: smtp.connections >= 1, timeout=30)  # the send has begun (DATA is held 4 s)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        time.sleep(2)  # well past a heartbeat and the lapse of this test (2 s)
        assert process.poll() is None and not smtp.messages, "the send should still be in flight"
        with runtime.sessions() as session:
            assert (
                len(live_workers(session, utcnow(), 2)) == 1
            )  # still live: its claim is not abandoned
        assert process.stderr is not None
        assert process.wait(60) == 0, process.stderr.read().decode()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        smtp.stop()
        runtime.close()
        broker.close()
    assert len(smtp.messages) == 1
    assert rows(make_sessionmaker(make_engine(settings.database_url))) == {}
