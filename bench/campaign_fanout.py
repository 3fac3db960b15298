"""Fan out a 100,000-recipient campaign run on PostgreSQL and time it.

Creates a throw-away database (``NOTIFIER_BENCH_PG_URL``, default the local test server), an
audience of N contacts with email consent (set-up, not timed), then times the run's fan-out:
keyset-paginated chunks, consent and suppression checks, rendering, a signed unsubscribe link
per email, bulk inserts of notifications and events, and publishing the delivery tasks to
Redis (``NOTIFIER_BENCH_REDIS_URL``; the in-memory broker if Redis is not there).

Prints one JSON line: {"recipients", "seconds", "per_s", "notifications", "broker"}.
Usage: .venv/bin/python bench/campaign_fanout.py [N]
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notifier.api.app import create_app
from notifier.campaigns import runs
from notifier.campaigns.models import Audience, AudienceMember, Contact
from notifier.config import Settings
from notifier.db.migrate import upgrade
from notifier.db.models import utcnow
from notifier.db.session import transaction
from notifier.keys import create_key
from notifier.runtime import Runtime

PG_ADMIN = os.environ.get(
    "NOTIFIER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("NOTIFIER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _audience(runtime: Runtime, count: int) -> None:
    now = utcnow()
    with transaction(runtime.sessions) as session:
        audience = Audience(name="everyone", created_at=now)
        session.add(audience)
        session.flush()
        for start in range(0, count, 10_000):
            rows = [
                {
                    "key": f"c{i:07d}",
                    "email": f"c{i:07d}@example.com",
                    "locale": "en",
                    "attributes": {"name": f"Customer {i}"},
                    "push_tokens": [],
                    "email_consent_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(start, min(count, start + 10_000))
            ]
            session.execute(insert(Contact), rows)
        session.execute(
            insert(AudienceMember).from_select(
                ["audience_id", "contact_id", "created_at"],
                select(text(f"'{audience.id}'"), Contact.id, text("now()")),
            )
        )


def main(count: int) -> None:
    name = f"notifier_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    broker = REDIS if _redis_up() else "memory://"
    try:
        upgrade(url)
        settings = Settings(
            env="test",
            data_dir=Path(tempfile.mkdtemp()),
            database_url=url,
            broker_url=broker,
            api_rate_limit="100000/minute",
        )
        runtime = Runtime.build(settings)
        if broker != "memory://":
            with runtime.celery.connection_for_write() as connection:
                connection.default_channel.client.flushdb()
        _audience(runtime, count)
        with transaction(runtime.sessions) as session:
            _, key = create_key(session, "bench", ["campaigns:manage"])
        headers = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(runtime=runtime)) as client:
            client.post(
                "/v1/templates",
                json={
                    "name": "sale",
                    "channel": "email",
                    "subject": "Sale, {{ name }}",
                    "body": "Hello {{ name }}, 20% off today.",
                },
                headers=headers,
            ).raise_for_status()
            campaign = client.post(
                "/v1/campaigns",
                json={
                    "name": "bench",
                    "template": "sale",
                    "audience": "everyone",
                    "lane": "email.promotional",
                },
                headers=headers,
            ).json()
            run = client.post(f"/v1/campaigns/{campaign['id']}/run", headers=headers)
            run_id = run.json()["id"]  # the task it enqueued has no worker here: timed below
        started = time.perf_counter()
        report = runs.fan_out(runtime, run_id)
        seconds = time.perf_counter() - started
        assert report.finished
        print(
            json.dumps(
                {
                    "recipients": count,
                    "seconds": round(seconds, 2),
                    "per_s": round(count / seconds),
                    "notifications": report.notifications,
                    "broker": broker.split(":", 1)[0],
                }
            )
        )
        if broker != "memory://":
            with runtime.celery.connection_for_write() as connection:
                connection.default_channel.client.flushdb()
        runtime.close()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
