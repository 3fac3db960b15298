"""The support console marks a test key's notification: a ``test`` badge in the search results
and on the notification's page, none on a live one's."""

from __future__ import annotations

import re

from notifier.db.models import Notification
from notifier.keys import KeyType
from notifier.services.models import DEFAULT_SERVICE_ID
from tests.factories import email
from tests.notifications_api import post
from tests.notifier_services.helpers import bearer

BADGE = re.compile(r'class="status status-test"[^>]*>test</span>')


def test_a_test_notification_wears_its_badge(console, client, auth, runtime):
    ci = bearer(runtime, DEFAULT_SERVICE_ID, KeyType.TEST)
    test_id = post(client, ci, email(reference="ci-run"))
    live_id = post(client, auth, email(reference="live-run"))
    results = console.get("/support", params={"q": "ci-run"}).text
    assert test_id in results and len(BADGE.findall(results)) == 1
    assert len(BADGE.findall(console.get(f"/support/notifications/{test_id}").text)) == 1
    assert not BADGE.search(console.get(f"/support/notifications/{live_id}").text)
    with runtime.sessions() as s:
        assert s.get(Notification, test_id).test and not s.get(Notification, live_id).test
