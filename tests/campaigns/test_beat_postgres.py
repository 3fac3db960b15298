"""A cron campaign fired by REAL celery beat processes (two of them, by mistake) from the
database-backed schedule, on PostgreSQL and Redis, with a worker consuming ``campaigns``.

The campaign is created after both beats started: they pick it up without a restart. Both fire
it; the run row, unique on (campaign, run_at), makes it one run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from notifier.api.app import create_app
from notifier.campaigns.models import CampaignRun
from notifier.db.migrate import upgrade
from notifier.db.models import Notification
from notifier.runtime import Runtime
from tests.factories import ALL_SCOPES, api_key, make_settings
from tests.services import REDIS_URL, fresh_postgres_database, require
from workers.app import create_worker_app
from workers.embedded import embedded_worker

NOTIFIER = str(Path(sys.executable).with_name("notifier"))
# a Redis database of its own: a worker of another suite consuming ``campaigns`` on the shared
# test database would take this test's tasks
BROKER_URL = REDIS_URL.rsplit("/", 1)[0] + "/12"


@pytest.fixture
def pg_url():
    with fresh_postgres_database() as url:
        yield url


def test_cron_campaign_is_fired_once_by_two_real_beats(tmp_path, pg_url):
    require("Redis", "127.0.0.1", 6379)
    upgrade(pg_url)
    settings = make_settings(tmp_path, database_url=pg_url, broker_url=BROKER_URL)
    runtime = Runtime.build(settings)
    worker_app = create_worker_app(settings, pool_size=4)
    with worker_app.connection_for_write() as connection:
        connection.default_channel.client.flushdb()
    env = {
        **os.environ,
        "NOTIFIER_ENV": "test",
        "NOTIFIER_DATA_DIR": str(tmp_path / "beat"),
        "NOTIFIER_DATABASE_URL": pg_url,
        "NOTIFIER_BROKER_URL": BROKER_URL,
        "NOTIFIER_LOG_FORMAT": "console",
    }
    logs = [tmp_path / "beat1.log", tmp_path / "beat2.log"]
    beats = [
        subprocess.Popen(
            [NOTIFIER, "beat"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
        )
        for log in logs
    ]
    try:
        with (
            embedded_worker(worker_app, ["campaigns"], loglevel="INFO"),
            TestClient(create_app(runtime=runtime)) as client,
        ):
            headers = {
                "Authorization": f"Bearer {api_key(runtime, 'marketing', scopes=ALL_SCOPES)}"
            }
            client.post(
                "/v1/templates",
                json={
                    "name": "digest",
                    "channel": "email",
                    "subject": "Weekly",
                    "body": "Hi {{ name }}",
                },
                headers=headers,
            )
            for i in range(40):
                client.put(
                    f"/v1/contacts/c{i}",
                    json={
                        "email": f"c{i}@example.com",
                        "consent": {"email": True},
                        "attributes": {"name": f"C{i}"},
                        "audiences": ["all"],
                    },
                    headers=headers,
                )
            time.sleep(3)  # both beats are up and reading the schedule
            for beat in beats:
                assert beat.poll() is None, "beat exited"
            response = client.post(
                "/v1/campaigns",
                json={
                    "name": "digest",
                    "template": "digest",
                    "audience": "all",
                    "lane": "email.promotional",
                    "schedule": {"cron": "* * * * *", "timezone": "Europe/London"},
                },
                headers=headers,
            )
            assert response.status_code == 201, response.text
            campaign_id = response.json()["id"]
            deadline = time.monotonic() + 150  # the next minute, plus start-up on a loaded machine
            first = None
            while time.monotonic() < deadline:
                with runtime.sessions() as s:
                    first = s.scalars(select(CampaignRun).order_by(CampaignRun.run_at)).first()
                if first is not None and first.status == "completed":
                    break
                time.sleep(0.5)
            assert first is not None and first.status == "completed", (
                "beat did not fire the campaign"
            )
            time.sleep(6)  # the second beat's fire (if any) has arrived by now
            client.post(f"/v1/campaigns/{campaign_id}/pause", headers=headers)
            with runtime.sessions() as s:
                run_ats = Counter(s.scalars(select(CampaignRun.run_at)))
                count, distinct = s.execute(
                    select(func.count(), func.count(func.distinct(Notification.recipient))).where(
                        Notification.reference == first.id
                    )
                ).one()
            assert run_ats[first.run_at] == 1 and set(run_ats.values()) == {1}
            assert first.run_at.second == 0 and count == distinct == 40
            progress = client.get(
                f"/v1/campaigns/{campaign_id}/runs/{first.id}", headers=headers
            ).json()
            assert progress["progress"]["created"] == 40
    finally:
        for beat in beats:
            beat.terminate()
        for beat in beats:
            try:
                beat.wait(10)
            except subprocess.TimeoutExpired:
                beat.kill()
        with worker_app.connection_for_write() as connection:
            connection.default_channel.client.flushdb()
        worker_app.runtime.close()
        runtime.close()
    fired = [log.read_text().count(f"campaign:{campaign_id}") for log in logs]
    assert all(n >= 1 for n in fired), (fired, logs[0].read_text()[-3000:])  # both beats fired it
