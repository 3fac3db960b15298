"""A real ``notifier worker`` keeps delivering across a restart of its broker (a private
RabbitMQ node or redis-server, never the shared one), measured from outside: the longest time
between two sends at a fake SMTP server while notifications keep arriving.

The test process plays the API (intake through the real app) and beat (the sweeper every second,
re-publishing what a failed publish or a broker that lost its queue left ``queued``); the worker
is a separate process, as in production.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from notifier.api.app import create_app
from notifier.db.migrate import upgrade
from notifier.runtime import Runtime
from tests.factories import api_key, email, make_settings
from tests.fakes.smtp_server import FakeSmtpServer
from tests.integration.providers_fakes import SENDER, write_providers_file
from tests.private_services import PrivateRabbitMQ, PrivateService, require_private
from tests.services import fresh_postgres_database
from workers import sweeper

pytestmark = pytest.mark.postgres

NOTIFIER = str(Path(sys.executable).parent / "notifier")
# Load that keeps every worker thread busy and its prefetch full: notifications arriving faster
# (about 30 a second) than the worker can send them (8 SMTP sessions, each send held 0.5 s by the
# fake), on 32 threads. A connection lost then has 32 tasks in flight: the condition in which
# Celery's prefetch reduction used to stall RabbitMQ workers after the restart. One notification
# per task keeps what the worker can hold in memory small (prefetch 4 x 32 tasks = 128 sends), so
# sends long after the reconnect prove it consumes from the restarted broker.
BATCH, PAUSE, DELAY, THREADS, SESSIONS = 1, 0.03, 0.5, 32, 8
HELD = 4 * THREADS * BATCH  # sends a worker can hold (prefetch multiplier 4, notifier.broker)
# Deliveries must resume within this long after the broker is back (the reconnect back-off of
# 2, 4, 6 s plus the sweeper's re-publishing of what a lost queue or a failed publish left).
RESUME_BOUND = 12.0


class TimedSmtp(FakeSmtpServer):
    """The SMTP fake, also noting when each message arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def record(self, server, session, envelope) -> None:
        super().record(server, session, envelope)
        self.times.append(time.monotonic())


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time without a send within [start, end], the window's edges included."""
    inside = sorted(t for t in times if start <= t <= end)
    points = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(points))


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        upgrade(url)
        yield url


def _worker(url: str, broker: str, providers: Path, directory: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_ENV="test",
        NOTIFIER_DATABASE_URL=url,
        NOTIFIER_BROKER_URL=broker,
        NOTIFIER_PROVIDERS_FILE=str(providers),
        NOTIFIER_DATA_DIR=str(directory),
        NOTIFIER_METRICS_PORT="0",
        NOTIFIER_LOG_LEVEL="INFO",
        NOTIFIER_LOG_FORMAT="console",
        NOTIFIER_RETRY_BASE_SECONDS="0.2",
    )
    log = open(directory / "worker.log", "wb")  # closed with the process
    return subprocess.Popen(
        [NOTIFIER, "worker", "--lanes", "email.transactional", "--concurrency", str(THREADS)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=directory,
    )


def _run_restart(
    kind: str,
    database: str,
    tmp_path: Path,
    ways: list[str],
    down_seconds: float,
) -> tuple[list[float], list[tuple[float, float, float]], bool]:
    """Run a worker under load, restart the broker each of ``ways``; returns the send times, one
    (restart began, broker back, window end) per restart, and whether the worker was alive."""
    broker: PrivateService = require_private(kind)
    smtp = TimedSmtp().start()
    smtp.delay_data(DELAY)
    providers = write_providers_file(
        tmp_path / "providers.toml",
        {
            "fake-smtp": {
                "type": "smtp",
                "host": smtp.host,
                "port": smtp.port,
                "tls": "none",
                "from_address": SENDER,
                "timeout_seconds": 5,
                "pool_size": SESSIONS,
            }
        },
        {"email.transactional": ["fake-smtp"]},
    )
    settings = make_settings(
        tmp_path, database_url=database, broker_url=broker.url, queued_stale_seconds=3
    )
    runtime = Runtime.build(settings)
    worker = _worker(database, broker.url, providers, tmp_path)
    stop = threading.Event()
    windows: list[tuple[float, float, float]] = []
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            auth = {"Authorization": f"Bearer {api_key(runtime)}"}

            def load() -> None:  # intake of batches (tasks of several ids), and beat's sweeper
                last_sweep = 0.0
                while not stop.is_set():
                    batch = [
                        email(to=f"u{time.monotonic_ns()}-{i}@example.com") for i in range(BATCH)
                    ]
                    client.post(
                        "/v1/notifications/batch", json={"notifications": batch}, headers=auth
                    )
                    if time.monotonic() - last_sweep > 1:
                        sweeper.sweep(
                            runtime
                        )  # a publish that fails is logged, left for the next sweep
                        last_sweep = time.monotonic()
                    time.sleep(PAUSE)

            loader = threading.Thread(target=load, daemon=True)
            loader.start()
            deadline = time.monotonic() + 90
            while len(smtp.times) < 50:
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                time.sleep(0.2)
            for way in ways:
                time.sleep(5)
                began = time.monotonic()
                if way == "stop_app":  # the RabbitMQ application restarts, the node stays up
                    assert isinstance(broker, PrivateRabbitMQ)
                    assert broker.ctl("stop_app").returncode == 0
                    time.sleep(down_seconds)
                    assert broker.ctl("start_app").returncode == 0
                else:  # the server process stops and starts again on the same port
                    broker.restart(down_seconds=down_seconds)
                back = time.monotonic()
                time.sleep(45)  # a stall shows as a gap longer than the bound within this window
                windows.append((began, back, time.monotonic()))
            stop.set()
            loader.join(30)
    finally:
        stop.set()
        alive = worker.poll() is None
        worker.terminate()
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        smtp.stop()
        runtime.close()
        broker.close()
    return smtp.times, windows, alive


@pytest.mark.parametrize(
    ("kind", "ways"), [("rabbitmq", ["stop_app", "restart"]), ("redis", ["restart", "restart"])]
)
def test_deliveries_resume_after_broker_restarts(
    kind: str, ways: list[str], database: str, tmp_path: Path
) -> None:
    times, windows, alive = _run_restart(kind, database, tmp_path, ways, down_seconds=3)
    log = (tmp_path / "worker.log").read_text()
    assert alive, f"the worker exited: {log[-3000:]}"
    assert "Unrecoverable error" not in log, log[-3000:]
    # The path that stalled RabbitMQ workers: Celery shrinking the prefetch after the reconnect and
    # growing it back from the pool threads, which then race the consumer on the AMQP socket (the
    # corrupted frames are the trace of that race). notifier.broker turns the reduction off.
    assert "Temporarily reducing the prefetch count" not in log
    assert "UnexpectedFrame" not in log
    for began, back, end in windows:
        gap = longest_gap(times, began, end)
        outage = back - began
        print(
            f"{kind}: broker away {outage:.1f} s, longest time without a send {gap:.1f} s, "
            f"{sum(1 for t in times if back < t <= end)} sends in the {end - back:.0f} s after"
        )  # with -s
        assert gap < outage + RESUME_BOUND, (
            f"{kind}: no send for {gap:.1f} s after a restart that kept the broker away "
            f"{outage:.1f} s",
            log[-3000:],
        )
        after = sum(1 for t in times if back < t <= end)
        assert after > 2 * HELD, (
            f"{kind}: only {after} sends in the {end - back:.0f} s after the restart"
        )
