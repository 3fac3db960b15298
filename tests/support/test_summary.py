"""The plain-language summary covers every status and says plainly what is known, including a
message no provider was ever asked about and one that may have been delivered."""

from __future__ import annotations

import pytest

from notifier.campaigns.models import HELD
from notifier.db.models import DeliveryEvent, Notification, utcnow
from notifier.statuses import Status
from notifier.support.summary import Facts, summarise
from tests.factories import delivery_event, notification


def _row(status: Status, **fields) -> Notification:
    return notification(status, **fields)


def _attempt(
    provider: str = "ses-main", code: str | None = "Throttling", detail: str = "slow down"
) -> DeliveryEvent:
    return delivery_event("n-1", provider=provider, response_code=code, detail=detail)


@pytest.mark.parametrize("status", list(Status))
def test_every_status_has_a_sentence(status):
    sentence = summarise(Facts(_row(status), events=[], suppressions=[]))
    assert sentence and sentence.endswith(".")
    assert "no answer was recorded" not in sentence


def test_a_failure_before_any_provider_was_asked_says_so() -> None:
    row = _row(Status.FAILED, status_reason="not rendered: missing value first_name")
    sentence = summarise(Facts(row, events=[], suppressions=[]))
    assert sentence == (
        "Not sent: it failed before any provider was asked to send it: "
        "not rendered: missing value first_name. It will not be retried."
    )


def test_giving_up_with_only_circuit_breaker_skips_does_not_invent_an_answer() -> None:
    row = _row(
        Status.FAILED, status_reason="gave up after 3 attempts", status_code="gave_up", attempts=3
    )
    events = [_attempt(code="circuit_open", detail="skipped") for _ in range(3)]
    sentence = summarise(Facts(row, events=events, suppressions=[]))
    assert "no provider was actually asked" in sentence and "last answer" not in sentence


def test_unconfirmed_says_it_may_have_been_delivered() -> None:
    row = _row(Status.UNCONFIRMED, provider="ses-main", attempts=3)
    sentence = summarise(
        Facts(row, events=[_attempt(code=None, detail="read timeout")], suppressions=[])
    )
    assert sentence.startswith("The request reached ses-main and no answer came after 3 attempts")
    assert "it may have been delivered" in sentence


def test_a_message_held_by_a_paused_campaign_says_so() -> None:
    row = _row(
        Status.SCHEDULED,
        not_before=HELD,
        send_at=utcnow(),
        status_reason="held: the campaign was paused",
    )
    assert summarise(Facts(row, events=[], suppressions=[])).startswith(
        "Held: its campaign was paused"
    )
