"""Unsubscribe links (RFC 8058 one-click) and SMS STOP/START through a signed Twilio webhook."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from sqlalchemy import select
from twilio.request_validator import RequestValidator

from notifier.db.models import Suppression
from tests.campaigns.conftest import contact
from tests.factories import email, sms
from workers.delivery import deliver_ids

PROMO = {"category": "promotional", "subject": "Sale", "body": "20% off, {{ name }}"}


def send(client, headers, payload) -> dict:
    response = client.post("/v1/notifications", json=payload, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


def test_promotional_email_carries_a_signed_link_and_one_click_unsubscribes(
    client, manager, worker_app, settings
):
    sent = send(client, manager, email(**PROMO))
    url = sent["content"]["unsubscribe_url"]
    assert url.startswith("https://notify.example.com/u/") and url in sent["content"]["body"]
    assert "ada@example.com" not in url
    deliver_ids(worker_app.delivery, [sent["id"]])
    written = json.loads(
        (settings.outbox_dir / "email.promotional" / f"{sent['id']}.json").read_text()
    )
    assert written["unsubscribe_url"] == url  # the providers turn it into List-Unsubscribe headers
    receipt = send(client, manager, email())
    assert "unsubscribe_url" not in receipt["content"]  # transactional mail carries none

    path = urlsplit(url).path
    page = client.get(path)  # no login
    assert page.status_code == 200 and "a…@example.com" in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert (
        page.headers["cache-control"] == "no-store"
        and page.headers["referrer-policy"] == "no-referrer"
    )
    # RFC 8058: the mail provider POSTs the body "List-Unsubscribe=One-Click"
    done = client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "unsubscribed" in done.text
    again = client.post(path, data={"List-Unsubscribe": "One-Click"})  # idempotent
    assert again.status_code == 200

    assert send(client, manager, email(**PROMO))["status"] == "suppressed"
    assert send(client, manager, email())["status"] == "queued"  # a receipt still goes out
    with worker_app.runtime.sessions() as s:
        rows = s.scalars(select(Suppression)).all()
    assert [(r.channel, r.recipient, r.reason) for r in rows] == [
        ("email", "ada@example.com", "unsubscribed")
    ]


def test_forged_or_altered_tokens_are_refused(client, manager, runtime):
    path = urlsplit(send(client, manager, email(**PROMO))["content"]["unsubscribe_url"]).path
    token = path.rsplit("/", 1)[1]
    altered = token[:-6] + ("AAAAAA" if token[-6:] != "AAAAAA" else "BBBBBB")
    for bad in (f"/u/{altered}", "/u/1", "/u/ada@example.com", "/u/" + "x" * 3000):
        assert client.get(bad).status_code == 404
        assert client.post(bad, data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert client.post(path).status_code == 400  # without the RFC 8058 body: nothing happens
    with runtime.sessions() as s:
        assert s.scalars(select(Suppression)).all() == []


def signed_post(client, settings, params: dict[str, str], token: str | None = None):
    url = "https://notify.example.com/v1/inbound/twilio/sms"
    signature = RequestValidator(token or settings.twilio_auth_token).compute_signature(url, params)
    return client.post(
        "/v1/inbound/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
    )


def inbound(body: str) -> dict[str, str]:
    return {
        "From": "+447911123456",
        "To": "+15005550006",
        "Body": body,
        "MessageSid": "SM" + "1" * 32,
    }


def test_stop_suppresses_and_start_restores_the_number(client, manager, settings, runtime):
    contact(client, manager, "ada", phone="+447911123456", consent={"sms": True})
    response = signed_post(client, settings, inbound("  Stop "))
    assert response.status_code == 200 and "<Response>" in response.text
    assert client.get("/v1/contacts/ada", headers=manager).json()["consent"]["sms"] is None
    promo = send(client, manager, sms(category="promotional", body="Sale!", data={}, sensitive=[]))
    assert promo["status"] == "suppressed" and "stop" in promo["status_reason"]
    assert promo["status_code"] == "suppressed"
    # carriers refuse every message to a number after STOP (Twilio 21610): not even a code is
    # attempted
    assert send(client, manager, sms())["status"] == "suppressed"

    assert signed_post(client, settings, inbound("START")).status_code == 200
    assert client.get("/v1/contacts/ada", headers=manager).json()["consent"]["sms"] is not None
    with runtime.sessions() as s:
        row = s.scalars(select(Suppression)).one()
    assert row.reason == "stop" and row.lifted_at is not None and row.lifted_by == "START"
    again = send(client, manager, sms(category="promotional", body="Sale!", data={}, sensitive=[]))
    assert again["status"] in ("queued", "scheduled")  # scheduled at night in London: quiet hours


def test_unsigned_or_wrongly_signed_inbound_changes_nothing(client, settings, runtime):
    params = inbound("STOP")
    assert client.post("/v1/inbound/twilio/sms", data=params).status_code == 403
    assert signed_post(client, settings, params, token="another-token").status_code == 403
    url = "https://notify.example.com/v1/inbound/twilio/sms"
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(url, params)
    tampered = {**params, "From": "+447911000000"}
    response = client.post(
        "/v1/inbound/twilio/sms", data=tampered, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "invalid_signature"
    assert signed_post(client, settings, inbound("stop please")).status_code == 200  # not a keyword
    with runtime.sessions() as s:
        assert s.scalars(select(Suppression)).all() == []
