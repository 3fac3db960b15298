"""The console shows each campaign's progress (issue 6: a progress bar where the console exists)."""

from __future__ import annotations

from notifier.campaigns import runs
from tests.campaigns.conftest import campaign, contact, template
from tests.factories import ALL_SCOPES, api_key


def test_campaign_progress_page_counts_the_latest_run(console, client, runtime):
    manager = {"Authorization": f"Bearer {api_key(runtime, 'marketing', scopes=ALL_SCOPES)}"}
    template(
        client, manager, "sale", "email", subject="Sale", body="Hello {{ name | default('') }}"
    )
    client.post("/v1/audiences", json={"name": "everyone"}, headers=manager)
    for i in range(3):
        contact(
            client,
            manager,
            f"c{i}",
            email=f"c{i}@example.com",
            audiences=["everyone"],
            consent={"email": True},
        )
    contact(client, manager, "no-consent", email="nc@example.com", audiences=["everyone"])
    created = campaign(client, manager)
    run_id = client.post(f"/v1/campaigns/{created['id']}/run", headers=manager).json()["id"]
    runs.run(runtime, run_id)

    page = console.get("/support/campaigns")
    assert page.status_code == 200
    assert "spring sale" in page.text
    assert '<progress value="1" max="4"' in page.text  # the one without consent is done: suppressed


def test_campaign_page_needs_a_session(client):
    response = client.get("/support/campaigns", follow_redirects=False)
    assert response.status_code in (302, 303) and "/support/login" in response.headers["location"]


def test_a_cancelled_run_shows_its_cancelled_count(console, client, runtime):
    import re

    manager = {"Authorization": f"Bearer {api_key(runtime, 'marketing', scopes=ALL_SCOPES)}"}
    template(client, manager, "sale", "email", subject="Sale", body="Hello")
    client.post("/v1/audiences", json={"name": "everyone"}, headers=manager)
    for i in range(3):
        contact(
            client,
            manager,
            f"c{i}",
            email=f"c{i}@example.com",
            audiences=["everyone"],
            consent={"email": True},
        )
    created = campaign(client, manager, throttle_per_minute=1)
    run_id = client.post(f"/v1/campaigns/{created['id']}/run", headers=manager).json()["id"]
    runs.run(runtime, run_id)
    assert client.post(f"/v1/campaigns/{created['id']}/cancel", headers=manager).status_code == 200
    page = console.get("/support/campaigns").text
    assert '<th scope="col">Cancelled</th>' in page
    header = re.findall(r'<th scope="col">([^<]+)</th>', page)
    row = re.findall(r"<td>([^<]*)</td>", page.split("<tbody>")[1])
    cells = dict(zip(header[-6:], row[-6:], strict=True))
    assert cells["Cancelled"] == "3" and cells["Waiting"] == "0"


def test_an_unknown_console_path_is_a_console_page(console, client):
    for c in (console, client):
        response = c.get("/support/no/such/page")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "There is no console page at /support/no/such/page." in response.text
        assert response.headers["X-Frame-Options"] == "DENY"
