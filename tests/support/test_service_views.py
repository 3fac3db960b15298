"""The per-service views' figures against rows we seed (volume per lane today, failures by
typed reason, test notifications apart), quota use after accepted sends through the real API
(read from the shared Redis counter without counting), the providers each lane uses, and
``notifier status --service``'s output; on PostgreSQL the day's query opens today's partition
only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from notifier.api.app import create_app
from notifier.cli import app
from notifier.db.migrate import upgrade
from notifier.db.session import make_engine, transaction
from notifier.keys import KeyType
from notifier.notifications import usage
from notifier.operations import ServiceView, service_views
from notifier.runtime import Runtime
from notifier.statuses import Status
from providers.interface import Lane
from tests.factories import email, insert_notifications, make_settings, notification_row
from tests.notifier_services.helpers import bearer, service


def _rows(service_id: str, lane: str, status: Status, n: int, **columns):
    made = []
    for _ in range(n):
        row = notification_row(status, lane=lane, **columns)
        row["service_id"] = service_id
        made.append(row)
    return made


def _view(runtime: Runtime, name: str, scope: str | None = None) -> ServiceView:
    with transaction(runtime.sessions) as s:
        views = service_views(s, runtime.settings, runtime.limiter, scope)
    return next(v for v in views if v.name == name)


def test_volume_and_failures_per_lane_today(runtime: Runtime) -> None:
    billing = service(runtime, "billing", provider_chains={"email.transactional": ["outbox"]})
    growth = service(runtime, "growth")
    yesterday = datetime.now(UTC) - timedelta(days=1, minutes=1)
    insert_notifications(
        runtime,
        [
            *_rows(billing, "email.transactional", Status.DELIVERED, 3),
            *_rows(billing, "email.transactional", Status.FAILED, 2, status_code="gave_up"),
            *_rows(
                billing,
                "email.transactional",
                Status.FAILED,
                1,
                status_code="rejected_by_provider",
            ),
            *_rows(billing, "email.transactional", Status.SENT, 2, test=True),
            *_rows(billing, "sms.transactional", Status.EXPIRED, 1, status_code="expired"),
            *_rows(billing, "sms.transactional", Status.SUPPRESSED, 1, status_code="suppressed"),
            *_rows(billing, "email.transactional", Status.FAILED, 4, now=yesterday),  # not today
            *_rows(growth, "email.transactional", Status.FAILED, 5, status_code="gave_up"),
        ],
    )
    view = _view(runtime, "billing")
    lanes = {lane.lane: lane for lane in view.lanes}
    email_lane = lanes[Lane.EMAIL_TRANSACTIONAL]
    assert (email_lane.usage.total, email_lane.usage.test) == (8, 2)
    assert {(f.status, f.code): n for f, n in email_lane.usage.failures.items()} == {
        ("failed", "gave_up"): 2,
        ("failed", "rejected_by_provider"): 1,
    }
    sms_lane = lanes[Lane.SMS_TRANSACTIONAL]
    assert sms_lane.usage.total == 2
    assert {(f.status, f.code): n for f, n in sms_lane.usage.failures.items()} == {
        ("expired", "expired"): 1,
        ("suppressed", "suppressed"): 1,
    }
    assert (view.total, view.failed) == (10, 5)
    assert lanes[Lane.PUSH_PROMOTIONAL].usage.total == 0
    # providers: the service's chain where it names a platform provider, else the platform's
    assert (email_lane.providers, email_lane.own_chain) == (("outbox",), True)
    assert sms_lane.providers == ("outbox",) and not sms_lane.own_chain
    assert email_lane.quota is None and email_lane.quota_used is None
    # growth's rows are its own; a scope of billing sees billing only
    assert _view(runtime, "growth").failed == 5
    with transaction(runtime.sessions) as s:
        assert [v.name for v in service_views(s, runtime.settings, None, billing)] == ["billing"]
    listed = view.as_json()["lanes"]
    assert isinstance(listed, list)
    assert listed[0] == {
        "lane": "email.transactional",
        "total": 8,
        "test": 2,
        "failures": [
            {"status": "failed", "reason": "gave_up", "count": 2},
            {"status": "failed", "reason": "rejected_by_provider", "count": 1},
        ],
        "providers": ["outbox"],
        "chain": "service",
        "quota": None,
        "quota_used": None,
    }


@pytest.fixture
def redis_runtime(tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    from tests.services import REDIS_URL, require

    address = urlsplit(REDIS_URL)
    require("Redis", address.hostname or "127.0.0.1", address.port or 6379)
    settings = make_settings(tmp_path, redis_url=REDIS_URL)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    runtime = Runtime.build(settings)
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as c:
        yield c, runtime
    runtime.close()


@pytest.mark.redis
def test_quota_used_after_accepted_sends_and_the_status_command(
    redis_runtime: tuple[TestClient, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, runtime = redis_runtime
    billing = service(runtime, "billing", daily_quotas={"email.transactional": 5})
    live, ci = bearer(runtime, billing), bearer(runtime, billing, KeyType.TEST)
    for _ in range(3):
        assert client.post("/v1/notifications", json=email(), headers=live).status_code == 202
    assert client.post("/v1/notifications", json=email(), headers=ci).status_code == 202  # free
    refused = client.post("/v1/notifications", json=email(to="nope"), headers=live)
    assert refused.status_code == 422  # a refused request costs no quota
    for _ in range(2):  # reading does not count
        lane = next(
            v for v in _view(runtime, "billing").lanes if v.lane.value == "email.transactional"
        )
        assert (lane.quota, lane.quota_used, lane.usage.total, lane.usage.test) == (5, 3, 4, 1)
    # the quota still has exactly two left: the views did not spend any
    for expected in (202, 202, 429):
        answered = client.post("/v1/notifications", json=email(), headers=live)
        assert answered.status_code == expected

    settings = runtime.settings
    monkeypatch.setenv("NOTIFIER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NOTIFIER_REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("NOTIFIER_BROKER_URL", "memory://")
    monkeypatch.setenv("NOTIFIER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    result = runner.invoke(app, ["status", "--service", "billing"])
    assert result.exit_code in (0, 1), result.output  # 1: no worker is running here
    assert "service billing: 6 today" in result.output
    line = next(x for x in result.output.splitlines() if "email.transactional" in x and "/ 5" in x)
    cells = [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
    assert cells[:3] == ["email.transactional", "6", "1"]
    assert "5 / 5" in cells and "outbox (platform)" in cells
    unknown = runner.invoke(app, ["status", "--service", "nobody"])
    assert unknown.exit_code == 2 and "no service 'nobody'" in unknown.output
    every = runner.invoke(app, ["status", "--service", "all"])
    assert "service billing" in every.output and "service default" in every.output


@pytest.mark.postgres
def test_the_days_query_opens_todays_partition_only() -> None:
    from tests.services import fresh_postgres_database

    with fresh_postgres_database() as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            day = datetime.now(UTC).date()
            compiled = usage.day_statement(day, "some-service").compile(
                engine, compile_kwargs={"literal_binds": True}
            )
            with engine.connect() as c:
                plan = "\n".join(r[0] for r in c.execute(text(f"EXPLAIN {compiled}")))
            partitions = set(re.findall(r"on (notifications_\w+)", plan))
            assert partitions == {f"notifications_p{day:%Y%m%d}"}, plan
        finally:
            engine.dispose()
