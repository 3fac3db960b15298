"""A phone number typed in local format is found through the configured regions (default
list in notifier.recipients, NOTIFIER_PHONE_SEARCH_REGIONS replaces it)."""

from __future__ import annotations

import pytest

from notifier.config import Settings
from tests.factories import sms
from tests.notifications_api import post
from tests.support.test_pages import result_ids


def test_an_australian_local_number_is_found(console, client, auth):
    target = post(client, auth, sms(to="+61491570159"))
    page = console.get("/support", params={"q": "0491 570 159"})
    assert page.status_code == 200 and result_ids(page.text) == [target]


def test_the_regions_are_configurable(console, client, auth, runtime, support_key):
    target = post(client, auth, sms(to="+61491570159"))
    runtime.settings.phone_search_regions = ["GB", "US"]
    assert result_ids(console.get("/support", params={"q": "0491 570 159"}).text) == []
    api = client.get(
        "/v1/support/notifications", params={"recipient": "0491 570 159"}, headers=support_key
    )
    assert api.json()["items"] == []
    runtime.settings.phone_search_regions = ["NZ", "AU"]
    api = client.get(
        "/v1/support/notifications", params={"recipient": "0491 570 159"}, headers=support_key
    )
    assert [i["id"] for i in api.json()["items"]] == [target]


def test_an_unknown_region_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="unknown regions"):
        Settings(phone_search_regions=["XX"])
