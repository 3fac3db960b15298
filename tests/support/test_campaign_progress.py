"""The console shows each campaign's progress (issue 6: a progress bar where the console exists)."""

from __future__ import annotations

from notifier.campaigns import runs
from tests.campaigns.conftest import campaign, contact, template
from tests.factories import ALL_SCOPES, api_key


def test_campaign_progress_page_counts_the_latest_run(console, client, runtime):  # type: ignore[no-untyped-def]
    manager = {"Authorization": f"Bearer {api_key(runtime, 'marketing', scopes=ALL_SCOPES)}"}
    template(client, manager, "sale", "email", subject="Sale", body="Hello {{ name | default('') }}")
    client.post("/v1/audiences", json={"name": "everyone"}, headers=manager)
    for i in range(3):
        contact(client, manager, f"c{i}", email=f"c{i}@example.com", audiences=["everyone"],
                consent={"email": True})
    contact(client, manager, "no-consent", email="nc@example.com", audiences=["everyone"])
    created = campaign(client, manager)
    run_id = client.post(f"/v1/campaigns/{created['id']}/run", headers=manager).json()["id"]
    runs.run(runtime, run_id)

    page = console.get("/support/campaigns")
    assert page.status_code == 200
    assert "spring sale" in page.text
    assert '<progress value="1" max="4"' in page.text  # the one without consent is done: suppressed


def test_campaign_page_needs_a_session(client):  # type: ignore[no-untyped-def]
    response = client.get("/support/campaigns", follow_redirects=False)
    assert response.status_code in (302, 303) and "/support/login" in response.headers["location"]
