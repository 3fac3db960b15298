"""THE redaction proof: a one-time code sent as a sensitive value appears nowhere support can
look: no console page, no API response, no delivery event, no audit row, no log line."""

from __future__ import annotations

import json
import logging

from sqlalchemy import select

from notifier.db.models import DeliveryEvent, Notification
from notifier.logs import JsonFormatter
from notifier.support.models import AuditEntry
from tests.factories import sms
from workers.delivery import deliver_ids

SECRET = "583920"


def test_a_sensitive_value_appears_nowhere(
    caplog,
    client,
    auth,
    runtime,
    worker_app,
    settings,
    console,
    admin_console,
    support_key,
):
    caplog.set_level(logging.DEBUG)
    sent = client.post(
        "/v1/notifications", json=sms(data={"code": SECRET}, sensitive=["code"]), headers=auth
    )
    assert sent.status_code == 202
    notification_id = sent.json()["id"]
    deliver_ids(worker_app.delivery, [notification_id])
    written = json.loads(
        (settings.outbox_dir / "sms.transactional" / f"{notification_id}.json").read_text()
    )
    assert written["body"] == f"Your code is {SECRET}"  # it really was sent, so it existed

    seen: dict[str, str] = {"intake response": sent.text}
    for who, browser in (("support", console), ("admin", admin_console)):
        for path in (
            "/support?q=07911+123456",
            "/support?q=&status=sent",
            f"/support/notifications/{notification_id}",
            "/support/recipient?address=%2B447911123456",
            f"/support?q={notification_id}&by=id",
            "/support/audit",
        ):
            response = browser.get(path)
            assert response.status_code in (200, 403), (who, path)
            seen[f"{who} {path}"] = response.text
    for path in (f"/v1/notifications/{notification_id}", "/v1/notifications"):
        seen[path] = client.get(path, headers=auth).text
    for path in (
        f"/v1/support/notifications/{notification_id}",
        "/v1/support/notifications?recipient=07911123456",
        "/v1/support/notifications",
    ):
        response = client.get(path, headers=support_key)
        assert response.status_code == 200
        seen[path] = response.text
    assert "Your code is [redacted]" in seen[f"support /support/notifications/{notification_id}"]

    with runtime.sessions() as s:
        for event in s.scalars(select(DeliveryEvent)):
            seen[f"event {event.id}"] = json.dumps(
                {c.name: getattr(event, c.name) for c in DeliveryEvent.__table__.columns},
                default=str,
            )
        row = s.get(Notification, notification_id)
        assert row.sealed_content is None  # the sealed copy is gone once sent
        seen["notification row"] = json.dumps(
            {c.name: getattr(row, c.name) for c in Notification.__table__.columns}, default=str
        )
        for entry in s.scalars(select(AuditEntry)):
            seen[f"audit {entry.id}"] = json.dumps(
                {c.name: getattr(entry, c.name) for c in AuditEntry.__table__.columns}, default=str
            )

    formatter = JsonFormatter()
    for i, record in enumerate(caplog.records):
        seen[f"log {i} {record.name}"] = (
            record.getMessage() + formatter.format(record) + repr(record.__dict__)
        )
    assert len(caplog.records) > 0

    leaks = [where for where, text in seen.items() if SECRET in text]
    assert leaks == []
