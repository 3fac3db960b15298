"""The API's list and the support search share one filters-to-WHERE mapping: the same filter
finds the same notifications through either, and both page the same way."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from notifier.db.models import ApiKey, utcnow
from notifier.notifications import listing
from notifier.statuses import Status
from notifier.support.search import Criteria, SearchField, search
from tests.factories import api_key, insert_notifications, notification_row


def _seed(runtime):
    api_key(runtime, "billing")
    api_key(runtime, "shop")
    with runtime.sessions() as s:
        keys = dict(s.execute(select(ApiKey.name, ApiKey.id)).all())
    now = utcnow()
    rows = [
        notification_row(Status.FAILED, api_key_id=keys["billing"], now=now - timedelta(minutes=1)),
        notification_row(
            Status.FAILED,
            api_key_id=keys["billing"],
            lane="sms.transactional",
            recipient="+447911123456",
            now=now - timedelta(minutes=2),
        ),
        notification_row(Status.FAILED, api_key_id=keys["shop"], now=now - timedelta(minutes=3)),
        notification_row(
            Status.SENT, api_key_id=keys["billing"], reference="r1", now=now - timedelta(minutes=4)
        ),
    ]
    return keys, insert_notifications(runtime, rows)


def test_the_same_filters_find_the_same_rows_for_the_api_and_support(runtime):
    keys, ids = _seed(runtime)
    with runtime.sessions() as s:
        api, _ = listing.page(
            s, listing.Filters(api_key_id=keys["billing"], status="failed"), None, 50
        )
        support = search(s, Criteria(caller="billing", status="failed"), None, 50)
        assert [r.id for r in api] == [r.id for r in support.rows] == ids[:2]
        assert support.counts == {"failed": 2}
        by_channel = search(s, Criteria(channel="email", status="failed"), None, 50)
        assert [r.id for r in by_channel.rows] == [ids[0], ids[2]]


def test_terms_are_read_in_any_spelling_and_anded(runtime):
    _, ids = _seed(runtime)
    regions = ("GB",)
    with runtime.sessions() as s:
        local = Criteria(terms=((SearchField.RECIPIENT, " 07911 123456 "),), regions=regions)
        assert [r.id for r in search(s, local, None, 50).rows] == [ids[1]]
        both = Criteria(
            terms=((SearchField.ANYTHING, "ADA@example.com"), (SearchField.REFERENCE, "r1"))
        )
        assert [r.id for r in search(s, both, None, 50).rows] == [ids[3]]


def test_pages_walk_every_row_newest_first_once(runtime):
    _, ids = _seed(runtime)
    seen, cursor = [], None
    with runtime.sessions() as s:
        while True:
            rows, cursor = listing.page(s, listing.Filters(), cursor, 1)
            seen += [r.id for r in rows]
            if cursor is None:
                break
    assert seen == ids
