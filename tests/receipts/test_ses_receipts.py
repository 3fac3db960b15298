"""SES events via SNS: signed with a key made here, certificate and SubscribeURL served over
https by a local SNS host, applied to email sent through moto's SES."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from notifier.db.models import DeliveryEvent, Suppression
from tests.factories import email
from tests.fakes.aws import SnsSigner, ses_event
from tests.notifications_api import timeline
from tests.receipts.conftest import LocalSigner
from tests.receipts.flow import apply_queued_receipts, post_sns, send
from tests.receipts.sns_host import LocalSnsHost

TO = "ada@example.com"


def receipt_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in body["events"] if e["kind"] == "receipt"]


def post_event(client: Any, sns: LocalSigner, event: dict[str, Any], accepted: int = 1) -> None:
    response = post_sns(client, sns.notification(event))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": accepted}


def test_delivery_event_moves_sent_to_delivered(client, auth, worker_app, moto_ses, sns) -> None:
    sent = send(client, auth, worker_app, email())
    message_id = sent["provider_message_id"]
    assert any(m["id"] == message_id for m in moto_ses.sent_messages())

    post_event(client, sns, ses_event("Delivery", message_id, [TO]))
    apply_queued_receipts(worker_app)

    body = timeline(client, auth, sent["id"])
    assert body["status"] == "delivered"
    [event] = receipt_events(body)
    assert event["provider"] == "ses-main" and event["response_code"] == "250"
    assert "ses receipt: Delivery [delivered]" in event["detail"]


def test_permanent_bounce_fails_and_suppresses_the_address(
    client, auth, worker_app, runtime, sns
) -> None:
    sent = send(client, auth, worker_app, email())

    post_event(client, sns, ses_event("Bounce", sent["provider_message_id"], [TO]))
    apply_queued_receipts(worker_app)

    body = timeline(client, auth, sent["id"])
    assert body["status"] == "failed"
    assert body["status_reason"] == "ses receipt: Bounce/Permanent/General (5.1.1)"
    with runtime.sessions() as session:
        suppression = session.scalars(select(Suppression)).one()
    assert (suppression.channel, suppression.recipient, suppression.reason) == (
        "email",
        TO,
        "hard_bounce",
    )
    later = client.post("/v1/notifications", json=email(), headers=auth).json()
    assert (
        later["status"] == "suppressed"
    )  # transactional mail to a hard bounce is stopped at intake


def test_transient_bounce_fails_without_suppressing(client, auth, worker_app, runtime, sns) -> None:
    sent = send(client, auth, worker_app, email())

    event = ses_event("Bounce", sent["provider_message_id"], [TO], bounce_type="Transient",
                      bounce_sub_type="MailboxFull", status="4.2.2")  # fmt: skip
    post_event(client, sns, event)
    apply_queued_receipts(worker_app)

    assert timeline(client, auth, sent["id"])["status"] == "failed"
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_complaint_suppresses_and_counts_as_delivered(
    client, auth, worker_app, runtime, sns
) -> None:
    sent = send(client, auth, worker_app, email(category="promotional"))
    message_id = sent["provider_message_id"]

    post_event(client, sns, ses_event("Delivery", message_id, [TO]))
    post_event(client, sns, ses_event("Complaint", message_id, [TO]))
    apply_queued_receipts(worker_app)

    body = timeline(client, auth, sent["id"])
    assert body["status"] == "delivered"
    assert "suppressed (complaint)" in receipt_events(body)[-1]["detail"]
    with runtime.sessions() as session:
        assert session.scalars(select(Suppression.reason)).all() == ["complaint"]
    later = client.post("/v1/notifications", json=email(), headers=auth).json()
    assert later["status"] == "suppressed"


def test_late_delivery_after_a_bounce_does_not_move_back(client, auth, worker_app, sns) -> None:
    sent = send(client, auth, worker_app, email())
    message_id = sent["provider_message_id"]

    post_event(client, sns, ses_event("Bounce", message_id, [TO]))
    post_event(client, sns, ses_event("Delivery", message_id, [TO]))
    apply_queued_receipts(worker_app)

    body = timeline(client, auth, sent["id"])
    assert body["status"] == "failed"
    assert [e["status"] for e in receipt_events(body)] == ["failed", None]
    assert receipt_events(body)[-1]["detail"].endswith("status stays failed")


def test_duplicate_notifications_are_tolerated(client, auth, worker_app, sns) -> None:
    sent = send(client, auth, worker_app, email())
    message = sns.notification(ses_event("Delivery", sent["provider_message_id"], [TO]))

    for _ in range(2):  # SNS delivers at least once
        assert post_sns(client, message).status_code == 202
    results = apply_queued_receipts(worker_app)

    assert [r["moved"] for r in results] == [1, 0]
    assert timeline(client, auth, sent["id"])["status"] == "delivered"


def test_unknown_message_id_changes_nothing(client, auth, worker_app, runtime, sns) -> None:
    sent = send(client, auth, worker_app, email())

    post_event(client, sns, ses_event("Bounce", "0102-not-ours", [TO]))
    results = apply_queued_receipts(worker_app)

    assert {r["unknown"] for r in results} == {1} and len(results) == 4
    assert timeline(client, auth, sent["id"])["status"] == "sent"
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        assert "receipt" not in session.scalars(select(DeliveryEvent.kind)).all()


def test_intermediate_events_are_recorded_and_opens_ignored(client, auth, worker_app, sns) -> None:
    sent = send(client, auth, worker_app, email())
    message_id = sent["provider_message_id"]

    post_event(client, sns, ses_event("DeliveryDelay", message_id, [TO]))
    post_event(client, sns, ses_event("Open", message_id, [TO]), accepted=0)
    apply_queued_receipts(worker_app)

    body = timeline(client, auth, sent["id"])
    assert body["status"] == "sent"
    [event] = receipt_events(body)
    assert "DeliveryDelay/MailboxFull [pending]" in event["detail"]


def test_subscription_confirmation_fetches_the_subscribe_url(
    client, sns, sns_server: LocalSnsHost
) -> None:
    message = sns.subscription_confirmation()

    response = post_sns(client, message)

    assert response.status_code == 202 and response.json() == {"accepted": 0}
    path = message["SubscribeURL"].removeprefix(sns_server.url(""))
    assert path in sns_server.requests


# --------------------------------------------------------------------------- refused


def test_message_signed_by_another_key_is_refused(client, auth, worker_app, sns) -> None:
    sent = send(client, auth, worker_app, email())
    forger = SnsSigner(region="eu-west-1")
    genuine_looking = forger.sign(
        forger.notification(ses_event("Bounce", sent["provider_message_id"], [TO])),
        "1",
        sns.cert_url,  # points at the real certificate, signed with another key
    )

    assert_refused(client, genuine_looking)
    assert_unchanged(client, auth, worker_app, sent["id"])


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda m: {k: v for k, v in m.items() if k != "Signature"}, id="unsigned"),
        pytest.param(lambda m: {**m, "Message": m["Message"].replace("Delivery", "Bounce")},
                     id="message-changed"),
        pytest.param(lambda m: {**m, "SigningCertURL": m["SigningCertURL"].replace(
            "https://", "http://")}, id="certificate-over-http"),
        pytest.param(lambda m: {**m, "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/x.pem"},
                     id="certificate-off-the-allowed-host"),
    ],
)  # fmt: skip
def test_tampered_message_is_refused(client, auth, worker_app, sns, tamper) -> None:
    sent = send(client, auth, worker_app, email())
    genuine = sns.notification(ses_event("Delivery", sent["provider_message_id"], [TO]))

    assert_refused(client, tamper(genuine))
    assert_unchanged(client, auth, worker_app, sent["id"])


def test_forged_subscription_confirmation_is_not_fetched(client, sns, sns_server) -> None:
    message = sns.subscription_confirmation()
    forged = {**message, "SubscribeURL": message["SubscribeURL"] + "&Token=attacker"}

    assert_refused(client, forged)
    assert not any("attacker" in path for path in sns_server.requests)


def test_topic_not_listed_in_settings_is_refused(client, auth, worker_app, sns, settings) -> None:
    sent = send(client, auth, worker_app, email())
    settings.ses_topic_arns = ["arn:aws:sns:eu-west-1:123456789012:other-topic"]

    assert_refused(client, sns.notification(ses_event("Bounce", sent["provider_message_id"], [TO])))
    assert_unchanged(client, auth, worker_app, sent["id"])

    settings.ses_topic_arns = [sns.signer.topic_arn()]
    post_event(client, sns, ses_event("Bounce", sent["provider_message_id"], [TO]))


def test_body_that_is_not_json_is_a_400(client) -> None:
    response = client.post("/v1/receipts/ses", content=b"{not json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def assert_refused(client: Any, message: dict[str, Any]) -> None:
    response = post_sns(client, message)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "invalid_signature"


def assert_unchanged(
    client: Any, auth: dict[str, str], worker_app: Any, notification_id: str
) -> None:
    assert apply_queued_receipts(worker_app) == []
    body = timeline(client, auth, notification_id)
    assert body["status"] == "sent" and receipt_events(body) == []
