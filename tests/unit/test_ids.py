"""Notification ids are time-ordered UUIDs that carry their row's created_at."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from notifier.db.models import id_time, new_id
from notifier.notifications import by_id


def test_an_id_is_a_version_7_uuid_made_at_its_time() -> None:
    at = datetime(2026, 12, 2, 23, 59, 59, 999_999, tzinfo=UTC)
    made = uuid.UUID(new_id(at=at))
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert id_time(str(made)) == datetime(2026, 12, 2, 23, 59, 59, 999_000, tzinfo=UTC)


def test_ids_made_in_the_same_millisecond_differ_and_sort_by_time() -> None:
    at = datetime(2026, 12, 2, 12, tzinfo=UTC)
    same = {new_id(at=at) for _ in range(10_000)}
    assert len(same) == 10_000
    later = new_id(at=at + timedelta(milliseconds=1))
    assert all(later > other for other in same)  # text order is time order


def test_only_a_time_ordered_id_gives_a_hint() -> None:
    assert id_time(str(uuid.uuid4())) is None  # an older row's random id
    assert id_time("not-an-id") is None and by_id.around("not-an-id") is None
    at = datetime(2026, 12, 2, 12, tzinfo=UTC)
    hint = by_id.around(new_id(at=at))
    assert hint is not None and min(hint) <= at <= max(hint)
