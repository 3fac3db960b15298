"""Twilio status callbacks: signed with the SDK's validator, queued, applied to the notification."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from notifier.db.models import DeliveryEvent, Suppression
from tests.factories import sms
from tests.fakes.twilio_api import TwilioAnswer, message_body
from tests.integration.providers_fakes import daytime_timezone
from tests.notifications_api import post, timeline
from tests.receipts.conftest import PUBLIC_URL
from tests.receipts.flow import (
    TWILIO_PATH,
    apply_queued_receipts,
    post_twilio,
    send,
    twilio_signature,
)
from workers.delivery import deliver_ids

SIGNED_URL = PUBLIC_URL + TWILIO_PATH


def callback(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0123456789abcdef" * 2,
        "MessageStatus": status,
        "SmsStatus": status,
        "To": "+447911123456",
        "From": "+15005550006",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def deliver_callback(client: Any, params: dict[str, str]) -> None:
    response = post_twilio(client, params, twilio_signature(SIGNED_URL, params))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1}


def receipt_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in body["events"] if e["kind"] == "receipt"]


def test_delivered_callback_moves_sent_to_delivered(client, auth, worker_app, twilio) -> None:
    sent = send(client, auth, worker_app, sms())
    sid = sent["provider_message_id"]
    assert twilio.created[0]["sid"] == sid

    deliver_callback(client, callback(sid, "delivered"))
    assert timeline(client, auth, sent["id"])["status"] == "sent"  # applied by the task, not inline
    [result] = apply_queued_receipts(worker_app)

    body = timeline(client, auth, sent["id"])
    assert result == {"recorded": 1, "moved": 1, "suppressed": 0, "unknown": 0}
    assert body["status"] == "delivered"
    [event] = receipt_events(body)
    assert event["status"] == "delivered" and event["provider"] == "twilio-main"
    assert event["provider_message_id"] == sid
    assert "twilio receipt: delivered" in event["detail"]


def test_intermediate_status_is_recorded_without_moving(client, auth, worker_app) -> None:
    sent = send(client, auth, worker_app, sms())

    deliver_callback(client, callback(sent["provider_message_id"], "sent"))
    apply_queued_receipts(worker_app)

    body = timeline(client, auth, sent["id"])
    assert body["status"] == "sent"
    [event] = receipt_events(body)
    assert event["status"] is None and "[pending]" in event["detail"]


def test_undelivered_fails_without_suppressing(client, auth, worker_app, runtime) -> None:
    sent = send(client, auth, worker_app, sms())

    deliver_callback(
        client, callback(sent["provider_message_id"], "undelivered", ErrorCode="30003")
    )
    apply_queued_receipts(worker_app)

    body = timeline(client, auth, sent["id"])
    assert body["status"] == "failed"
    assert body["status_reason"] == "twilio receipt: undelivered (30003)"
    assert body["status_code"] == "receipt_failed"
    assert receipt_events(body)[0]["response_code"] == "30003"
    with runtime.sessions() as session:
        assert session.scalars(select(Suppression)).all() == []


def test_unsubscribed_recipient_21610_fails_and_suppresses_stop(
    client, auth, worker_app, runtime
) -> None:
    promotional = sms(
        category="promotional", body="Sale!", data={}, sensitive=[], timezone=daytime_timezone()
    )
    sent = send(client, auth, worker_app, promotional)

    deliver_callback(client, callback(sent["provider_message_id"], "failed", ErrorCode="21610"))
    apply_queued_receipts(worker_app)

    body = timeline(client, auth, sent["id"])
    assert body["status"] == "failed"
    with runtime.sessions() as session:
        suppression = session.scalars(select(Suppression)).one()
    assert (suppression.channel, suppression.recipient, suppression.reason) == (
        "sms",
        "+447911123456",
        "stop",
    )
    assert suppression.notification_id == sent["id"]
    assert "suppressed (stop)" in receipt_events(body)[0]["detail"]
    later = client.post("/v1/notifications", json=promotional, headers=auth).json()
    assert later["status"] == "suppressed"


def test_late_delivered_after_failed_does_not_move_back(client, auth, worker_app) -> None:
    sent = send(client, auth, worker_app, sms())
    sid = sent["provider_message_id"]

    deliver_callback(client, callback(sid, "undelivered", ErrorCode="30008"))
    deliver_callback(client, callback(sid, "delivered"))
    apply_queued_receipts(worker_app)

    body = timeline(client, auth, sent["id"])
    assert body["status"] == "failed"
    first, late = receipt_events(body)
    assert first["status"] == "failed"
    assert late["status"] is None and late["detail"].endswith("status stays failed")


def test_duplicate_callbacks_change_the_status_once(client, auth, worker_app) -> None:
    sent = send(client, auth, worker_app, sms())
    params = callback(sent["provider_message_id"], "delivered")

    deliver_callback(client, params)
    deliver_callback(client, params)  # Twilio retries a callback it thinks failed
    results = apply_queued_receipts(worker_app)

    assert [r["moved"] for r in results] == [1, 0]
    body = timeline(client, auth, sent["id"])
    assert body["status"] == "delivered"
    assert [e["status"] for e in receipt_events(body)] == ["delivered", None]


# --------------------------------------------------------------------------- refused


def forged_requests(sid: str) -> dict[str, tuple[dict[str, str], str | None]]:
    genuine = callback(sid, "delivered")
    return {
        "unsigned": (genuine, None),
        "empty signature": (genuine, ""),
        "signed with another token": (genuine, twilio_signature(SIGNED_URL, genuine, "x" * 32)),
        "signed for the internal URL": (
            genuine,
            twilio_signature("http://testserver" + TWILIO_PATH, genuine),
        ),
        "parameters changed after signing": (
            callback(sid, "failed", ErrorCode="21610"),
            twilio_signature(SIGNED_URL, genuine),
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unsigned",
        "empty signature",
        "signed with another token",
        "signed for the internal URL",
        "parameters changed after signing",
    ],
)
def test_forged_or_unsigned_callback_is_refused_and_changes_nothing(
    client, auth, worker_app, runtime, case
) -> None:
    sent = send(client, auth, worker_app, sms())
    params, signature = forged_requests(sent["provider_message_id"])[case]

    response = post_twilio(client, params, signature)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    assert all(r["unknown"] == r["recorded"] == 0 for r in apply_queued_receipts(worker_app))
    body = timeline(client, auth, sent["id"])
    assert body["status"] == "sent" and receipt_events(body) == []
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_without_a_configured_auth_token_every_callback_is_refused(
    client, auth, worker_app, settings
) -> None:
    sent = send(client, auth, worker_app, sms())
    settings.twilio_auth_token = None
    params = callback(sent["provider_message_id"], "delivered")

    response = post_twilio(client, params, twilio_signature(SIGNED_URL, params))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"


def test_signed_callback_without_message_sid_is_a_validation_error(client) -> None:
    params = {"MessageStatus": "delivered"}

    response = post_twilio(client, params, twilio_signature(SIGNED_URL, params))

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_query_string_is_part_of_the_signed_url(client, auth, worker_app) -> None:
    sent = send(client, auth, worker_app, sms())
    params = callback(sent["provider_message_id"], "delivered")
    path = TWILIO_PATH + "?tenant=billing"

    response = post_twilio(client, params, twilio_signature(PUBLIC_URL + path, params), path)

    assert response.status_code == 202
    apply_queued_receipts(worker_app)
    assert timeline(client, auth, sent["id"])["status"] == "delivered"


def test_callback_for_an_unknown_message_is_retried_then_dropped(
    client, auth, worker_app, runtime
) -> None:
    sent = send(client, auth, worker_app, sms())

    deliver_callback(client, callback("SM" + "f" * 32, "delivered"))
    results = apply_queued_receipts(worker_app)

    assert [r["unknown"] for r in results] == [1, 1, 1, 1]  # first try and three late tries
    assert timeline(client, auth, sent["id"])["status"] == "sent"
    with runtime.sessions() as session:
        kinds = session.scalars(select(DeliveryEvent.kind)).all()
    assert "receipt" not in kinds


def test_receipt_overtaking_the_send_record_is_applied_on_a_late_try(
    client, auth, worker_app, twilio
) -> None:
    sid = "SM" + "a1" * 16
    answer = {**message_body(twilio.account_sid, {"To": "+447911123456", "Body": "x"}), "sid": sid}
    twilio.program(TwilioAnswer(201, answer))
    notification_id = post(client, auth, sms())

    deliver_callback(client, callback(sid, "delivered"))  # Twilio calls back before we record
    [first] = apply_queued_receipts(worker_app, limit=1)
    deliver_ids(worker_app.delivery, [notification_id])
    [late_try] = apply_queued_receipts(worker_app)

    assert first["unknown"] == 1 and late_try == {
        "recorded": 1,
        "moved": 1,
        "suppressed": 0,
        "unknown": 0,
    }
    body = timeline(client, auth, notification_id)
    assert body["status"] == "delivered" and body["provider_message_id"] == sid
