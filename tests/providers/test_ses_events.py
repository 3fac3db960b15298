"""SES events over SNS: signature verification with keys made in the test, and event mapping."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.email.ses_events import (
    SesEventError,
    SnsSignatureError,
    parse_ses_event,
    subscription_confirmation_url,
    verify_sns_message,
)
from providers.interface import Receipt, ReceiptOutcome
from tests.fakes.aws import SnsSigner, ses_event

Message = dict[str, Any]


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    return SnsSigner(region="eu-west-1")


@pytest.fixture(scope="module")
def forger() -> SnsSigner:
    return SnsSigner(region="eu-west-1")


def bounce_notification(signer: SnsSigner, **options: Any) -> Message:
    return signer.notification(ses_event("Bounce", "0102-ses-id", ["bob@example.com"]), **options)


# --------------------------------------------------------------------------- genuine messages


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, "Amazon SES Email Event Notification"])
def test_genuine_notification_verifies(
    signer: SnsSigner, version: str, subject: str | None
) -> None:
    message = bounce_notification(signer, signature_version=version, subject=subject)

    verify_sns_message(message, signer.fetch_certificate)

    assert message["SignatureVersion"] == version
    assert parse_ses_event(message)[0].outcome is ReceiptOutcome.HARD_BOUNCE


@pytest.mark.parametrize("message_type", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_genuine_confirmations_verify(signer: SnsSigner, message_type: str) -> None:
    message = signer.subscription_confirmation(signature_version="2")
    message = signer.sign({**message, "Type": message_type}, "2")

    verify_sns_message(message, signer.fetch_certificate)

    assert parse_ses_event(message) == []


def test_certificates_are_fetched_once_per_url() -> None:
    signer = SnsSigner()

    for _ in range(3):
        verify_sns_message(bounce_notification(signer), signer.fetch_certificate)

    assert signer.fetched == [signer.cert_url]


# --------------------------------------------------------------------------- forged messages


@dataclass(frozen=True)
class Forgery:
    name: str
    reason: str  # what the verifier must say
    make: Callable[[SnsSigner, SnsSigner], Message]


def _tampered(message: Message, **changes: Any) -> Message:
    return {**message, **changes}


def _without(message: Message, key: str) -> Message:
    return {k: v for k, v in message.items() if k != key}


FORGERIES = [
    Forgery(
        "signed with another key",
        "does not verify",
        lambda s, f: f.sign(_without(bounce_notification(s), "Signature"), cert_url=s.cert_url),
    ),
    Forgery(
        "tampered Message",
        "does not verify",
        lambda s, f: _tampered(
            bounce_notification(s),
            Message=json.dumps(ses_event("Delivery", "0102-ses-id", ["bob@example.com"])),
        ),
    ),
    Forgery(
        "tampered MessageId",
        "does not verify",
        lambda s, f: _tampered(bounce_notification(s), MessageId="another"),
    ),
    Forgery(
        "Subject added after signing",
        "does not verify",
        lambda s, f: _tampered(bounce_notification(s), Subject="hi"),
    ),
    Forgery(
        "Type changed",
        "lacks SubscribeURL",
        lambda s, f: _tampered(bounce_notification(s), Type="SubscriptionConfirmation"),
    ),
    Forgery(
        "version 1 signature claimed as 2",
        "does not verify",
        lambda s, f: _tampered(bounce_notification(s), SignatureVersion="2"),
    ),
    Forgery(
        "unknown SignatureVersion",
        "unsupported SignatureVersion",
        lambda s, f: _tampered(bounce_notification(s), SignatureVersion="3"),
    ),
    Forgery(
        "signature not base64",
        "not base64",
        lambda s, f: _tampered(bounce_notification(s), Signature="not base64!"),
    ),
    Forgery(
        "no Signature",
        "lacks Signature",
        lambda s, f: _without(bounce_notification(s), "Signature"),
    ),
    Forgery(
        "no MessageId",
        "lacks MessageId",
        lambda s, f: _without(bounce_notification(s), "MessageId"),
    ),
    Forgery(
        "no Timestamp",
        "lacks Timestamp",
        lambda s, f: _without(bounce_notification(s), "Timestamp"),
    ),
    Forgery(
        "no SigningCertURL",
        "SigningCertURL is missing",
        lambda s, f: _without(bounce_notification(s), "SigningCertURL"),
    ),
    Forgery(
        "unknown Type",
        "unknown SNS message type",
        lambda s, f: f.sign({**bounce_notification(s), "Type": "Gossip"}),
    ),
    Forgery(
        "non-string field",
        "must be strings",
        lambda s, f: _tampered(bounce_notification(s), Message={"a": 1}),
    ),
    Forgery(
        "http certificate URL",
        "not https",
        lambda s, f: f.sign(
            _without(bounce_notification(s), "Signature"),
            cert_url=f.cert_url.replace("https:", "http:"),
        ),
    ),
    Forgery(
        "certificate on another host",
        "not on an SNS host",
        lambda s, f: f.sign(
            _without(bounce_notification(s), "Signature"), cert_url="https://evil.example/cert.pem"
        ),
    ),
    Forgery(
        "host that only starts like SNS",
        "not on an SNS host",
        lambda s, f: f.sign(
            _without(bounce_notification(s), "Signature"),
            cert_url="https://sns.eu-west-1.amazonaws.com.evil.example/c.pem",
        ),
    ),
    Forgery(
        "SNS host as userinfo",
        "credentials or an unusual port",
        lambda s, f: f.sign(
            _without(bounce_notification(s), "Signature"),
            cert_url="https://sns.eu-west-1.amazonaws.com@evil.example/c.pem",
        ),
    ),
    Forgery(
        "SNS host on another port",
        "credentials or an unusual port",
        lambda s, f: f.sign(
            _without(bounce_notification(s), "Signature"),
            cert_url="https://sns.eu-west-1.amazonaws.com:8443/c.pem",
        ),
    ),
    Forgery(
        "certificate URL that does not exist",
        "could not fetch",
        lambda s, f: s.sign(
            _without(bounce_notification(s), "Signature"),
            cert_url="https://sns.eu-west-1.amazonaws.com/missing.pem",
        ),
    ),
]


@pytest.mark.parametrize("forgery", FORGERIES, ids=lambda forgery: forgery.name)
def test_forged_messages_are_refused(
    signer: SnsSigner, forger: SnsSigner, forgery: Forgery
) -> None:
    message = forgery.make(signer, forger)

    with pytest.raises(SnsSignatureError, match=forgery.reason):
        verify_sns_message(message, signer.fetch_certificate)


def test_expired_certificate_is_refused() -> None:
    signer = SnsSigner(expired=True)

    with pytest.raises(SnsSignatureError, match="not valid now"):
        verify_sns_message(bounce_notification(signer), signer.fetch_certificate)


def test_allowed_certificate_host_can_be_narrowed(signer: SnsSigner) -> None:
    only_us_east = re.compile(r"^sns\.us-east-1\.amazonaws\.com$")

    with pytest.raises(SnsSignatureError, match="not on an SNS host"):
        verify_sns_message(bounce_notification(signer), signer.fetch_certificate, only_us_east)


# --------------------------------------------------------------------------- subscription


def test_subscription_confirmation_gives_its_url(signer: SnsSigner) -> None:
    message = signer.subscription_confirmation()

    url = subscription_confirmation_url(message)

    assert url == message["SubscribeURL"]
    assert url is not None
    assert url.startswith("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription")


def test_notification_has_no_subscription_url(signer: SnsSigner) -> None:
    assert subscription_confirmation_url(bounce_notification(signer)) is None


def test_subscribe_url_off_sns_is_refused(signer: SnsSigner) -> None:
    message = {**signer.subscription_confirmation(), "SubscribeURL": "https://evil.example/"}

    with pytest.raises(SnsSignatureError):
        subscription_confirmation_url(message)


# --------------------------------------------------------------------------- event mapping


@dataclass(frozen=True)
class EventRow:
    event: dict[str, Any]
    expected: list[Receipt]


AT = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def receipt(outcome: ReceiptOutcome, raw_status: str, recipient: str, **extra: Any) -> Receipt:
    return Receipt(
        provider="ses",
        provider_message_id="0102-ses-id",
        outcome=outcome,
        recipient=recipient,
        occurred_at=AT,
        raw_status=raw_status,
        **extra,
    )


BOB, CAROL = "bob@example.com", "carol@example.com"

EVENTS = [
    EventRow(ses_event("Delivery", "0102-ses-id", [BOB]),
             [receipt(ReceiptOutcome.DELIVERED, "Delivery", BOB, code="250",
                      description="250 2.6.0 Message received")]),
    EventRow(ses_event("Bounce", "0102-ses-id", [BOB, CAROL]),
             [receipt(ReceiptOutcome.HARD_BOUNCE, "Bounce/Permanent/General", r, code="5.1.1",
                      description="smtp; 550 5.1.1 user unknown") for r in (BOB, CAROL)]),
    EventRow(ses_event("Bounce", "0102-ses-id", [BOB], bounce_type="Transient",
                       bounce_sub_type="MailboxFull", status="4.2.2",
                       diagnostic_code="smtp; 452 4.2.2 mailbox full"),
             [receipt(ReceiptOutcome.FAILED, "Bounce/Transient/MailboxFull", BOB, code="4.2.2",
                      description="smtp; 452 4.2.2 mailbox full")]),
    EventRow(ses_event("Bounce", "0102-ses-id", [BOB], bounce_type="Undetermined",
                       bounce_sub_type="Undetermined", status="5.0.0",
                       diagnostic_code="unknown"),
             [receipt(ReceiptOutcome.FAILED, "Bounce/Undetermined/Undetermined", BOB,
                      code="5.0.0", description="unknown")]),
    EventRow(ses_event("Complaint", "0102-ses-id", [BOB]),
             [receipt(ReceiptOutcome.COMPLAINT, "Complaint/abuse", BOB, description="abuse")]),
    EventRow(ses_event("Send", "0102-ses-id", [BOB]),
             [receipt(ReceiptOutcome.PENDING, "Send", BOB)]),
    EventRow(ses_event("DeliveryDelay", "0102-ses-id", [BOB]),
             [receipt(ReceiptOutcome.PENDING, "DeliveryDelay/MailboxFull", BOB, code="4.2.2",
                      description="smtp; 452 4.2.2 full")]),
    EventRow(ses_event("Reject", "0102-ses-id", [BOB]),
             [receipt(ReceiptOutcome.FAILED, "Reject", BOB, description="Bad content")]),
    EventRow(ses_event("Rendering Failure", "0102-ses-id", [BOB]),
             [receipt(ReceiptOutcome.FAILED, "Rendering Failure", BOB,
                      description="Attribute 'name' is not present")]),
    EventRow(ses_event("Open", "0102-ses-id", [BOB]), []),
    EventRow(ses_event("Click", "0102-ses-id", [BOB]), []),
    # identity notifications (notificationType) carry the same objects
    EventRow(ses_event("Delivery", "0102-ses-id", [BOB], publishing=False),
             [receipt(ReceiptOutcome.DELIVERED, "Delivery", BOB, code="250",
                      description="250 2.6.0 Message received")]),
    EventRow(ses_event("Bounce", "0102-ses-id", [BOB], publishing=False),
             [receipt(ReceiptOutcome.HARD_BOUNCE, "Bounce/Permanent/General", BOB, code="5.1.1",
                      description="smtp; 550 5.1.1 user unknown")]),
    EventRow(ses_event("Complaint", "0102-ses-id", [BOB], publishing=False),
             [receipt(ReceiptOutcome.COMPLAINT, "Complaint/abuse", BOB, description="abuse")]),
    EventRow({"notificationType": "AmazonSnsSubscriptionSucceeded",
              "message": "You have successfully subscribed"}, []),
]  # fmt: skip


def _event_id(row: EventRow) -> str:
    kind = row.event.get("eventType") or row.event.get("notificationType")
    detail = row.event.get("bounce", {}).get("bounceType", "")
    source = "event" if "eventType" in row.event else "notification"
    return f"{source}:{kind}:{detail}"


@pytest.mark.parametrize("row", EVENTS, ids=_event_id)
def test_ses_events_map_to_receipts(signer: SnsSigner, row: EventRow) -> None:
    message = signer.notification(row.event)
    verify_sns_message(message, signer.fetch_certificate)

    assert parse_ses_event(message) == row.expected


@pytest.mark.parametrize(
    "payload",
    ["not json", json.dumps(["a", "list"]), json.dumps({"eventType": "Delivery"}),
     json.dumps({"eventType": "Delivery", "mail": {"messageId": "x"}})],
    ids=["not-json", "not-an-object", "no-mail", "no-delivery-object"],
)  # fmt: skip
def test_unreadable_events_are_refused(signer: SnsSigner, payload: str) -> None:
    with pytest.raises(SesEventError):
        parse_ses_event(signer.notification(payload))
