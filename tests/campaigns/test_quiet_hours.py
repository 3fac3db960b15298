"""Quiet hours as pure functions of explicit times: timezones, a region with several zones, DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from notifier.content.quiet_hours import (
    QuietHours,
    deferral,
    phone_zones,
    quiet_hours_deferral,
    recipient_zones,
)
from notifier.errors import NotifierError
from providers.interface import Lane

LONDON, PARIS, NEW_YORK = (
    ZoneInfo("Europe/London"),
    ZoneInfo("Europe/Paris"),
    ZoneInfo("America/New_York"),
)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "zone", "expected"),
    [
        (utc(2026, 6, 10, 12, 0), LONDON, None),  # 13:00 BST: allowed
        (utc(2026, 6, 10, 19, 59), LONDON, None),  # 20:59 BST: allowed
        (utc(2026, 6, 10, 20, 0), LONDON, utc(2026, 6, 11, 7, 0)),  # 21:00 BST -> 08:00 BST
        (utc(2026, 6, 10, 23, 30), LONDON, utc(2026, 6, 11, 7, 0)),  # after midnight local
        (utc(2026, 6, 11, 6, 59), LONDON, utc(2026, 6, 11, 7, 0)),  # 07:59 BST
        (utc(2026, 6, 11, 7, 0), LONDON, None),  # 08:00 BST exactly: allowed
        (utc(2026, 6, 10, 20, 0), PARIS, utc(2026, 6, 11, 6, 0)),  # 22:00 CEST -> 08:00 CEST
        (utc(2026, 6, 10, 20, 0), NEW_YORK, None),  # 16:00 EDT
        (utc(2026, 6, 11, 2, 0), NEW_YORK, utc(2026, 6, 11, 12, 0)),  # 22:00 EDT -> 08:00 EDT
    ],
)
def test_deferral_in_the_recipients_timezone(moment, zone, expected):
    result = deferral(moment, [zone])
    assert (result[0] if result else None) == expected


def test_spring_forward_night_is_one_hour_shorter():
    # Europe/London goes from GMT to BST at 01:00 UTC on 29 March 2026
    deferred = deferral(utc(2026, 3, 28, 22, 0), [LONDON])  # 22:00 GMT
    assert deferred is not None
    released, reason = deferred
    assert released == utc(2026, 3, 29, 7, 0)  # 08:00 BST: 9 hours later, not 10
    assert reason.code == "quiet_hours"
    assert "Europe/London" in reason.text and "21:00-08:00" in reason.text


def test_fall_back_night_is_one_hour_longer():
    # BST ends at 01:00 UTC on 25 October 2026
    deferred = deferral(utc(2026, 10, 24, 21, 0), [LONDON])  # 22:00 BST
    assert deferred is not None
    released, _ = deferred
    assert released == utc(2026, 10, 25, 8, 0)  # 08:00 GMT: 11 hours later


def test_a_window_ending_inside_a_dst_gap_lands_after_the_gap():
    hours = QuietHours.parse("23:00", "01:30")  # 01:30 does not exist in London on 29 March
    deferred = deferral(utc(2026, 3, 28, 23, 30), [LONDON], hours)
    assert deferred is not None
    released, _ = deferred
    assert released == utc(2026, 3, 29, 1, 30)  # 02:30 BST, the first minute that exists after
    assert not hours.is_quiet(released.astimezone(LONDON).time())


def test_several_zones_of_one_region_must_all_be_awake():
    zones = [ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles")]
    # 12:00 UTC = 08:00 EDT but 05:00 PDT: wait for 08:00 in Los Angeles
    deferred = deferral(utc(2026, 6, 10, 12, 0), zones)
    assert deferred is not None
    released, _ = deferred
    assert released == utc(2026, 6, 10, 15, 0)


def test_recipient_zone_comes_from_the_contact_then_the_phone_then_the_fallback():
    assert "Europe/London" in phone_zones("+447911123456")  # and the Crown dependencies
    assert recipient_zones("Asia/Tokyo", "+447911123456", "UTC") == [ZoneInfo("Asia/Tokyo")]
    assert recipient_zones(None, "+33612345678", "UTC") == [ZoneInfo("Europe/Paris")]
    assert recipient_zones(None, None, "Australia/Sydney") == [ZoneInfo("Australia/Sydney")]
    assert recipient_zones(None, None, None) == []


def test_intake_rule_applies_to_promotional_sms_and_push_only():
    night = utc(2026, 6, 10, 23, 0)  # midnight in London
    deferred = quiet_hours_deferral(Lane.SMS_PROMOTIONAL, "+447911123456", None, night)
    assert deferred is not None and deferred[0] == utc(2026, 6, 11, 7, 0)
    assert quiet_hours_deferral(Lane.SMS_TRANSACTIONAL, "+447911123456", None, night) is None
    assert (
        quiet_hours_deferral(Lane.EMAIL_PROMOTIONAL, "a@example.com", "Europe/London", night)
        is None
    )
    assert (
        quiet_hours_deferral(Lane.PUSH_PROMOTIONAL, "a" * 64, None, night) is None
    )  # no zone known
    assert quiet_hours_deferral(Lane.PUSH_PROMOTIONAL, "a" * 64, "Europe/London", night) is not None
    with pytest.raises(NotifierError):
        quiet_hours_deferral(Lane.PUSH_PROMOTIONAL, "a" * 64, "Mars/Olympus", night)
