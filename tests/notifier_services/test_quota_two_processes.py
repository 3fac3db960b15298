"""A daily quota holds across two real API processes sharing Redis and PostgreSQL, while a busy
service's quota is counted from leased tokens (no Redis round trip per notification): never more
accepted than the quota, at most one lease per process lost (1 % of it), the rest refused with
429 ``quota_exceeded`` and ``reset_at``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from notifier.db.migrate import upgrade
from notifier.db.models import Notification
from notifier.runtime import Runtime
from tests.factories import email, make_settings
from tests.notifier_services.helpers import bearer, service
from tests.private_processes import free_port
from tests.services import REDIS_URL, fresh_postgres_database, require

QUOTA = 500


@pytest.fixture
def database() -> Iterator[str]:
    address = urlsplit(REDIS_URL)
    require("Redis", address.hostname or "127.0.0.1", address.port or 6379)
    with fresh_postgres_database() as url:
        yield url


def _api(settings_env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "notifier"), "api", "--port", str(port)],
        env=settings_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
    )


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "the API did not start"
        time.sleep(0.2)


async def _hammer(ports: list[int], auth: dict[str, str], per_port: int) -> list[httpx.Response]:
    """``per_port`` requests to each process, 16 at a time on each."""

    async def one_process(port: int) -> list[httpx.Response]:
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:

            async def post() -> httpx.Response:
                async with limit:
                    return await client.post("/v1/notifications", json=email(), headers=auth)

            return list(await asyncio.gather(*(post() for _ in range(per_port))))

    answers = await asyncio.gather(*(one_process(p) for p in ports))
    return [a for per in answers for a in per]


def test_two_api_processes_never_accept_more_than_the_quota(tmp_path, database):
    settings = make_settings(tmp_path, database_url=database, redis_url=REDIS_URL)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    billing = service(runtime, "billing", daily_quotas={"email.transactional": QUOTA})
    auth = bearer(runtime, billing)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFIER_", "PROMETHEUS_"))}
    env.update(
        NOTIFIER_ENV="test",
        NOTIFIER_DATABASE_URL=database,
        # behind PgBouncer (CI's second pass) the processes must know it, as this one does:
        # without it their prepared statements failed there (503s that had spent quota)
        NOTIFIER_DATABASE_POOLER=settings.database_pooler.value,
        NOTIFIER_DATA_DIR=str(settings.data_dir),
        NOTIFIER_REDIS_URL=REDIS_URL,
        NOTIFIER_BROKER_URL="memory://",  # nothing consumes: only acceptance is under test
        NOTIFIER_API_RATE_LIMIT="100000/minute",
        NOTIFIER_LOG_LEVEL="WARNING",
    )
    ports = [free_port(), free_port()]
    processes = [_api(env, port, tmp_path) for port in ports]
    try:
        for port, process in zip(ports, processes, strict=True):
            _wait_ready(port, process)
        answers = asyncio.run(_hammer(ports, auth, per_port=350))  # 700 against 500
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)
    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code != 202]
    assert QUOTA - 2 * (QUOTA // 100) <= len(accepted) <= QUOTA, len(accepted)
    assert {a.status_code for a in refused} == {429}
    for answer in refused:
        error = answer.json()["error"]
        assert error["code"] == "quota_exceeded", error
        assert error["reset_at"].endswith("T00:00:00+00:00")
        assert 1 <= int(answer.headers["Retry-After"]) <= 86400
    with runtime.sessions() as s:  # nothing accepted beyond what was stored, nothing more stored
        assert s.scalar(select(func.count()).select_from(Notification)) == len(accepted)
    runtime.close()
