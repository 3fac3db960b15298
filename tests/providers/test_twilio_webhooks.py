"""Twilio status callbacks and inbound SMS: genuine signatures from the SDK, each status mapped,
the opt-out/opt-in keywords recognised."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from providers.interface import ReceiptOutcome
from providers.sms.twilio_webhooks import (
    InboundSms,
    SmsKeyword,
    parse_inbound,
    parse_status_callback,
    verify_signature,
)

AUTH_TOKEN = "12345678901234567890123456789012"
URL = "https://notifier.example/webhooks/twilio/status?lane=sms.transactional"
MESSAGE_SID = "SM" + "a" * 32
CALLBACK = {
    "AccountSid": "AC" + "0" * 32,
    "MessageSid": MESSAGE_SID,
    "SmsSid": MESSAGE_SID,
    "MessageStatus": "delivered",
    "From": "+15005550006",
    "To": "+447700900123",
    "ApiVersion": "2010-04-01",
}


def signed(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


# ------------------------------------------------------------------------------ signatures


def test_genuine_signature_verifies() -> None:
    assert verify_signature(URL, CALLBACK, signed(URL, CALLBACK), AUTH_TOKEN) is True


def test_signature_over_url_with_default_port_verifies() -> None:
    with_port = URL.replace("notifier.example", "notifier.example:443")

    assert verify_signature(URL, CALLBACK, signed(with_port, CALLBACK), AUTH_TOKEN) is True


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        (URL, {**CALLBACK, "MessageStatus": "failed"}, signed(URL, CALLBACK)),  # tampered param
        (URL, {**CALLBACK, "Extra": "1"}, signed(URL, CALLBACK)),  # added param
        (URL.replace("status", "inbound"), CALLBACK, signed(URL, CALLBACK)),  # other URL
        (URL, CALLBACK, signed(URL, CALLBACK, token="another-accounts-token")),  # wrong key
        (URL, CALLBACK, ""),  # no signature
        (URL, CALLBACK, "bm90IGEgc2lnbmF0dXJl"),  # garbage
    ],
    ids=["tampered", "added", "other-url", "wrong-token", "missing", "garbage"],
)
def test_forged_signature_fails(url: str, params: dict[str, str], signature: str) -> None:
    assert verify_signature(url, params, signature, AUTH_TOKEN) is False


def test_empty_auth_token_never_verifies() -> None:
    assert verify_signature(URL, CALLBACK, signed(URL, CALLBACK, token=""), "") is False


# ------------------------------------------------------------------------------ status callbacks

STATUS_ROWS = [
    ("accepted", None, ReceiptOutcome.PENDING),
    ("queued", None, ReceiptOutcome.PENDING),
    ("sending", None, ReceiptOutcome.PENDING),
    ("sent", None, ReceiptOutcome.PENDING),
    ("delivered", None, ReceiptOutcome.DELIVERED),
    ("undelivered", "30003", ReceiptOutcome.FAILED),
    ("failed", "30008", ReceiptOutcome.FAILED),
    ("undelivered", "21610", ReceiptOutcome.UNSUBSCRIBED),
    ("failed", "21610", ReceiptOutcome.UNSUBSCRIBED),
    ("undelivered", "30005", ReceiptOutcome.HARD_BOUNCE),
    ("undelivered", "30006", ReceiptOutcome.HARD_BOUNCE),
    ("failed", "30006", ReceiptOutcome.HARD_BOUNCE),
    ("Delivered", None, ReceiptOutcome.DELIVERED),
    ("some-future-status", None, ReceiptOutcome.PENDING),
]


@pytest.mark.parametrize(("status", "error_code", "outcome"), STATUS_ROWS)
def test_status_callback_maps_to_receipt(
    status: str, error_code: str | None, outcome: ReceiptOutcome
) -> None:
    params = {**CALLBACK, "MessageStatus": status}
    if error_code:
        params["ErrorCode"] = error_code

    receipt = parse_status_callback(params)

    assert receipt.provider == "twilio"
    assert receipt.provider_message_id == MESSAGE_SID
    assert receipt.outcome == outcome
    assert receipt.code == error_code
    assert receipt.raw_status == status.lower()
    assert receipt.recipient == CALLBACK["To"]


def test_error_code_of_a_delivered_message_does_not_make_it_fail() -> None:
    receipt = parse_status_callback(
        {**CALLBACK, "MessageStatus": "delivered", "ErrorCode": "30005"}
    )

    assert receipt.outcome == ReceiptOutcome.DELIVERED


@pytest.mark.parametrize("missing", ["MessageSid", "MessageStatus"])
def test_status_callback_without_required_field_is_refused(missing: str) -> None:
    params = {k: v for k, v in CALLBACK.items() if k != missing}

    with pytest.raises(ValueError, match=missing):
        parse_status_callback(params)


# ------------------------------------------------------------------------------ inbound

KEYWORD_ROWS = [
    ("STOP", SmsKeyword.STOP),
    ("stop", SmsKeyword.STOP),
    ("  Stop \n", SmsKeyword.STOP),
    ("STOPALL", SmsKeyword.STOP),
    ("unsubscribe", SmsKeyword.STOP),
    ("CANCEL", SmsKeyword.STOP),
    ("End", SmsKeyword.STOP),
    ("QUIT", SmsKeyword.STOP),
    ("START", SmsKeyword.START),
    ("yes", SmsKeyword.START),
    ("UNSTOP", SmsKeyword.START),
    ("HELP", SmsKeyword.HELP),
    (" info", SmsKeyword.HELP),
    ("STOP please", None),
    ("please stop", None),
    ("STOP.", None),
    ("stopp", None),
    ("Hello, see you at 5", None),
    ("", None),
]


@pytest.mark.parametrize(("body", "keyword"), KEYWORD_ROWS)
def test_inbound_keyword(body: str, keyword: SmsKeyword | None) -> None:
    inbound = parse_inbound(
        {"From": "+447700900123", "To": "+15005550006", "Body": body, "MessageSid": MESSAGE_SID}
    )

    assert inbound == InboundSms(
        from_number="+447700900123",
        to_number="+15005550006",
        body=body,
        keyword=keyword,
        message_sid=MESSAGE_SID,
    )


def test_keywords_compare_equal_to_their_names() -> None:
    assert parse_inbound({"From": "+447700900123", "To": "+1500", "Body": "stop"}).keyword == "stop"


@pytest.mark.parametrize("missing", ["From", "To"])
def test_inbound_without_addresses_is_refused(missing: str) -> None:
    params = {"From": "+447700900123", "To": "+15005550006", "Body": "STOP"}
    del params[missing]

    with pytest.raises(ValueError, match=missing):
        parse_inbound(params)
