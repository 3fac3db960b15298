# ruff: noqa: F811 - the fixtures are imported from providers_fakes by name
"""Sent once under provider faults, counted where the recipient would see it: at the fakes.

API -> worker -> the real SDKs -> the local fakes (aiosmtpd relay, SES HTTP fake, moto). Each
test drives deliveries by hand (``deliver_ids``), clearing ``not_before`` or waiting out a
breaker's cool-down between rounds, and asserts what the fakes received.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from notifier.config import Settings
from notifier.db.models import Notification
from notifier.db.session import transaction
from tests.factories import api_key, email, make_settings
from tests.fakes.aws import AwsAnswer
from tests.integration.providers_fakes import (  # noqa: F401 - fixtures
    Block,
    build,
    moto_ses,
    moto_ses_server,
    secret_env,
    ses_api,
    ses_block,
    smtp,
    smtp_block,
    smtp_certificates,
    write_providers_file,
)
from tests.notifications_api import post, timeline
from workers.delivery import deliver_ids

COOL_DOWN = 0.6


@pytest.fixture
def settings(tmp_path: Path, secret_env: Mapping[str, str]) -> Settings:
    return make_settings(
        tmp_path,
        providers_file=tmp_path / "providers.toml",
        max_attempts=3,
        circuit_failure_threshold=2,
        circuit_cooldown_seconds=COOL_DOWN,
    )


def view(client: Any, auth: dict[str, str], notification_id: str) -> dict[str, Any]:
    return timeline(client, auth, notification_id)


def due_now(runtime: Any) -> None:
    """Skip the retry backoff: the next delivery may go at once."""
    with transaction(runtime.sessions) as session:
        session.execute(update(Notification).values(not_before=None))


def kinds(body: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in body["events"]]


def test_a_relay_that_takes_the_message_and_never_answers_gets_one_message_id_and_no_other_provider_is_asked(  # noqa: E501
    client, auth, runtime, build, smtp, ses_api
) -> None:
    smtp.accept_then_stall(3)
    app = build(
        {
            "smtp-main": smtp_block(smtp, timeout_seconds=0.3),
            "ses-backup": ses_block(ses_api.endpoint_url),
        },
        {"email.transactional": ["smtp-main", "ses-backup"]},
    )
    notification_id = post(client, auth, email(to="ada@example.com"))

    deliver_ids(app.delivery, [notification_id])  # attempt 1: taken in, no answer
    due_now(runtime)
    deliver_ids(app.delivery, [notification_id])  # attempt 2: the same; the breaker opens
    due_now(runtime)
    deliver_ids(app.delivery, [notification_id])  # open: it waits, no attempt is spent
    waiting = timeline(client, auth, notification_id)
    assert waiting["status"] == "queued" and waiting["attempts"] == 2
    assert (
        waiting["events"][-1]["kind"] == "waiting"
        and "no attempt used" in waiting["events"][-1]["detail"]
    )
    time.sleep(COOL_DOWN)
    due_now(runtime)
    deliver_ids(app.delivery, [notification_id])  # the trial after the cool-down: attempt 3

    body = timeline(client, auth, notification_id)
    assert body["status"] == "unconfirmed", body
    assert body["attempts"] == 3
    assert "may have been delivered" in body["status_reason"]
    received = [m for m in smtp.messages if m.rcpt_tos == ["ada@example.com"]]
    assert len(received) == 3  # the recipient's relay has three copies ...
    assert {m.message["Message-ID"] for m in received} == {f"<{notification_id}@notifier.example>"}
    assert ses_api.sent_emails() == []  # ... of one message, and no other provider was asked


def test_a_wrong_smtp_password_fails_over_to_ses_and_opens_the_smtp_breaker(
    client, auth, runtime, build, smtp, moto_ses, monkeypatch
) -> None:
    monkeypatch.setenv("TEST_ROTATED_SMTP_PASSWORD", "rotated-and-not-updated")
    app = build(
        {
            "smtp-main": smtp_block(smtp, password_env="TEST_ROTATED_SMTP_PASSWORD"),
            "ses-backup": ses_block(moto_ses.endpoint_url),
        },
        {"email.transactional": ["smtp-main", "ses-backup"]},
    )
    first = post(client, auth, email(to="ada@example.com"))
    deliver_ids(app.delivery, [first])
    second = post(client, auth, email(to="bob@example.com"))
    deliver_ids(app.delivery, [second])

    one, two = timeline(client, auth, first), timeline(client, auth, second)
    assert (one["status"], one["provider"]) == ("sent", "ses-backup"), one
    assert [
        (e["provider"], e["response_code"]) for e in one["events"] if e["kind"] == "attempt"
    ] == [("smtp-main", "535"), ("ses-backup", "200")]
    assert [e["provider"] for e in two["events"] if e["kind"] == "attempt"] == ["ses-backup"]
    assert smtp.messages == []
    assert sorted(m["destinations"]["ToAddresses"][0] for m in moto_ses.sent_messages()[-2:]) == [
        "ada@example.com",
        "bob@example.com",
    ]
    assert client.get("/readyz").json()["providers"]["smtp-main@email.transactional"] == "open"
    from notifier import metrics

    assert metrics.ACCOUNT_REFUSALS.labels("smtp-main", "email.transactional")._value.get() >= 1


def test_every_provider_open_spends_no_attempt_and_the_message_goes_after_the_cool_down(
    client, auth, runtime, build, smtp
) -> None:
    smtp.reply_to_mail("421 4.3.2 service shutting down")
    app = build({"smtp-main": smtp_block(smtp)}, {"email.transactional": ["smtp-main"]})
    opening = [post(client, auth, email(to=f"user{i}@example.com")) for i in range(2)]
    deliver_ids(app.delivery, opening)  # two unavailable answers open the breaker
    smtp.reply_to_mail(None)  # the relay is back, the breaker does not know yet

    waiting = post(client, auth, email(to="ada@example.com"))
    for _ in range(5):  # however often it comes round while open, nothing is spent
        deliver_ids(app.delivery, [waiting])
        due_now(runtime)
    held = timeline(client, auth, waiting)
    assert (held["status"], held["attempts"]) == ("queued", 0), held
    assert "attempt" not in kinds(held) and "waiting" in kinds(held)
    support = {"Authorization": f"Bearer {api_key(runtime, 'helpdesk', scopes=['support:read'])}"}
    summary = client.get(f"/v1/support/notifications/{waiting}", headers=support).json()["summary"]
    assert summary.startswith(
        "Not sent yet: no provider of the email.transactional lane could be contacted"
    ), summary
    time.sleep(COOL_DOWN)
    deliver_ids(app.delivery, [waiting])

    sent = timeline(client, auth, waiting)
    assert (sent["status"], sent["attempts"]) == ("sent", 1), sent
    assert [m.rcpt_tos for m in smtp.messages] == [["ada@example.com"]]


def test_answers_about_one_recipient_or_throttling_never_hold_up_the_others(
    client, auth, runtime, build, smtp, ses_api
) -> None:
    smtp.reply_to_rcpt("busy@example.com", "450 4.2.1 mailbox busy, try later")
    ses_api.answer(
        AwsAnswer(
            status=400,
            error_type="TooManyRequestsException",
            body={"message": "Maximum sending rate exceeded."},
        )
    )
    app = build(
        {"smtp-main": smtp_block(smtp), "ses-main": ses_block(ses_api.endpoint_url)},
        {"email.transactional": ["smtp-main"], "email.promotional": ["ses-main"]},
    )
    busy = [post(client, auth, email(to="busy@example.com")) for _ in range(5)]
    throttled = [
        post(client, auth, email(category="promotional", to=f"p{i}@example.com")) for i in range(5)
    ]
    deliver_ids(app.delivery, busy)
    deliver_ids(app.delivery, throttled)
    assert {timeline(client, auth, i)["status"] for i in busy + throttled} == {"queued"}
    ses_api.answer(AwsAnswer())

    other = post(client, auth, email(to="ada@example.com"))
    promo = post(client, auth, email(category="promotional", to="bob@example.com"))
    deliver_ids(app.delivery, [other])
    deliver_ids(app.delivery, [promo])

    assert timeline(client, auth, other)["status"] == "sent"  # the relay's breaker stayed closed
    assert timeline(client, auth, promo)["status"] == "sent"  # and so did SES's
    assert ["ada@example.com"] in [m.rcpt_tos for m in smtp.messages]
    circuits = client.get("/readyz").json().get("providers", {})
    assert circuits == {}  # no breaker ever changed state
