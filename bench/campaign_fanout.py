"""Fan out a 100,000-recipient campaign run on PostgreSQL and time it.

Creates a throw-away database in ``--database-url`` (default the local server), an audience of
N contacts with email consent (set-up, not timed), then times the run's fan-out:
keyset-paginated chunks, consent and suppression checks, rendering, a signed unsubscribe link
per email, bulk inserts of notifications and events, and publishing the delivery tasks to the
broker (``--broker-url``, or by default the benchmarks' own Redis DB 12 or RabbitMQ vhost, see
``bench/common.py``; ``--broker memory`` for none).

Prints one JSON line: {"recipients", "seconds", "per_s", "notifications", "broker"}.
Usage: .venv/bin/python -m bench.campaign_fanout [--recipients N] [--database-url ...]
    [--broker-url ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # also runnable as a script: python bench/campaign_fanout.py

from bench.common import add_service_options, fresh_database, own_broker
from notifier.api.app import create_app
from notifier.campaigns import runs
from notifier.campaigns.models import Audience, AudienceMember, Contact
from notifier.config import Environment, Settings
from notifier.db.migrate import upgrade
from notifier.db.models import utcnow
from notifier.db.session import transaction
from notifier.keys import create_key
from notifier.runtime import Runtime


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    add_service_options(parser)
    args = parser.parse_args()
    with ExitStack() as stack:
        broker = (
            "memory://"
            if args.broker_url == "memory"
            else stack.enter_context(own_broker(args.broker, args.broker_url))
        )
        url = stack.enter_context(fresh_database(args.database_url))
        result = fan_out(args.recipients, url, broker, args.redis_url)
    print(json.dumps(result))


def fan_out(count: int, url: str, broker: str, redis_url: str) -> dict:
    upgrade(url)
    settings = Settings(
        env=Environment.TEST,
        data_dir=Path(tempfile.mkdtemp()),
        database_url=url,
        broker_url=broker,
        redis_url=redis_url,
        api_rate_limit="100000/minute",
    )
    runtime = Runtime.build(settings)
    try:
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
        return {
            "recipients": count,
            "seconds": round(seconds, 2),
            "per_s": round(count / seconds),
            "notifications": report.notifications,
            "broker": broker.split(":", 1)[0],
        }
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
