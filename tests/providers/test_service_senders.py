"""A service's SMS sender on the wire (Twilio's fake API): the message's sender replaces the
lane's configured one, a messaging service or a number, never both; and the outbox shows a
service's From among the headers it would send."""

from __future__ import annotations

from typing import Any

from providers.interface import EmailMessage, Lane
from providers.outbox import wire_headers
from tests.fakes.twilio_api import FakeTwilioApi
from tests.providers.test_twilio import (  # noqa: F401 - the fixtures
    SENDERS,
    ProviderFactory,
    api,
    make_provider,
    send,
    sms,
)


def test_a_services_sender_id_replaces_the_lanes_messaging_service(
    api: FakeTwilioApi,  # noqa: F811
    make_provider: ProviderFactory,  # noqa: F811
) -> None:
    provider = make_provider(status_callback_url=None)
    send(provider, sms(sender_id="+447700900123"))
    send(provider, sms(messaging_service_sid="MG" + "3" * 32))
    send(provider, sms())
    first, second, platform = (m.form for m in api.messages)
    assert first.get("From") == "+447700900123" and "MessagingServiceSid" not in first
    assert second.get("MessagingServiceSid") == "MG" + "3" * 32 and "From" not in second
    assert platform["MessagingServiceSid"] == SENDERS["transactional_messaging_service_sid"]


def test_the_outbox_shows_a_services_from_and_reply_to() -> None:
    common: dict[str, Any] = {
        "notification_id": "n-1",
        "lane": Lane.EMAIL_TRANSACTIONAL,
        "to": "a@example.com",
    }
    message = EmailMessage(
        subject="s",
        text="t",
        from_address="billing@example.com",
        reply_to="help@example.com",
        headers={"Reply-To": "caller@example.com"},
        **common,
    )
    headers = wire_headers(message)
    assert ("From", "billing@example.com") in headers
    assert [v for k, v in headers if k == "Reply-To"] == ["help@example.com"]
    assert "From" not in dict(wire_headers(EmailMessage(subject="s", text="t", **common)))
