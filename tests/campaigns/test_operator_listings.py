"""Operator listings (keyset pages) and lifecycle: archive templates, audiences and campaigns
(refused while in use), delete a contact; the auth matrix and bad input change nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from notifier.campaigns import runs
from notifier.campaigns.models import AudienceMember, Contact
from tests.campaigns.conftest import campaign, contact, run_now, template

ROUTES = [
    ("get", "/v1/templates"),
    ("get", "/v1/audiences"),
    ("get", "/v1/audiences/everyone/contacts"),
    ("get", "/v1/imports"),
    ("get", "/v1/campaigns/x/runs"),
    ("post", "/v1/templates/sale/archive"),
    ("post", "/v1/audiences/everyone/archive"),
    ("post", "/v1/campaigns/x/archive"),
    ("delete", "/v1/contacts/ada"),
]


def _walk(client, headers, path: str, limit: int = 2) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = client.get(path, params=params, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_auth_matrix(client, auth, runtime):
    for method, path in ROUTES:
        for headers, status in (({}, 401), (auth, 403)):
            response = getattr(client, method)(path, headers=headers)
            assert response.status_code == status, (method, path)


def test_listings_page_through_everything(client, manager):
    for name in ("a", "b", "c"):
        template(client, manager, name, "email", subject="S", body="B")
    for i in range(5):
        contact(client, manager, f"k{i}", email=f"k{i}@example.com", audiences=["everyone"])
    client.post("/v1/audiences", json={"name": "vip"}, headers=manager)
    client.post(
        "/v1/audiences/vip/import",
        content=b"key,email\nk9,k9@example.com\n",
        headers={**manager, "Content-Type": "text/csv"},
    )
    assert [t["name"] for t in _walk(client, manager, "/v1/templates")] == ["c", "b", "a"]
    assert [a["name"] for a in _walk(client, manager, "/v1/audiences")] == ["vip", "everyone"]
    assert [c["key"] for c in _walk(client, manager, "/v1/audiences/everyone/contacts")] == [
        f"k{i}" for i in range(5)
    ]
    imports = _walk(client, manager, "/v1/imports")
    assert [(j["audience"], j["created"]) for j in imports] == [("vip", 1)]
    for path in ("/v1/templates", "/v1/audiences/everyone/contacts", "/v1/imports"):
        bad = client.get(path, params={"cursor": "not-ours"}, headers=manager)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor", path
    assert client.get("/v1/audiences/nobody/contacts", headers=manager).status_code == 404


def test_runs_listing_and_archiving(client, manager, runtime):
    template(client, manager, "sale", "email", subject="S", body="B")
    contact(
        client,
        manager,
        "ada",
        email="ada@example.com",
        audiences=["everyone"],
        consent={"email": True},
    )
    created = campaign(client, manager)
    run_id = run_now(client, manager, created["id"])
    runs.run(runtime, run_id)
    listed = client.get(f"/v1/campaigns/{created['id']}/runs", headers=manager).json()
    assert [r["id"] for r in listed["items"]] == [run_id] and listed["next_cursor"] is None
    draft = campaign(client, manager, name="later")

    in_use = client.post("/v1/templates/sale/archive", headers=manager)  # "later" may still send
    assert in_use.status_code == 409 and "'later'" in in_use.json()["error"]["message"]
    assert client.post("/v1/audiences/everyone/archive", headers=manager).status_code == 409
    assert client.post(f"/v1/campaigns/{draft['id']}/archive", headers=manager).status_code == 200
    assert client.post(f"/v1/campaigns/{draft['id']}/archive", headers=manager).status_code == 409
    assert client.post(f"/v1/campaigns/{draft['id']}/run", headers=manager).status_code == 409
    names = [c["name"] for c in client.get("/v1/campaigns", headers=manager).json()]
    assert names == ["spring sale"]  # "spring sale" completed, not archived
    everything = client.get(
        "/v1/campaigns", params={"include_archived": "true"}, headers=manager
    ).json()
    assert {c["name"] for c in everything} == {"spring sale", "later"}

    archived = client.post("/v1/templates/sale/archive", headers=manager)
    assert archived.status_code == 200 and archived.json()["archived_at"]
    assert client.get("/v1/templates", headers=manager).json()["items"] == []
    assert client.get("/v1/templates/sale", headers=manager).status_code == 200  # still readable
    refused = client.post(
        "/v1/campaigns",
        json={"name": "x", "template": "sale", "audience": "everyone", "lane": "email.promotional"},
        headers=manager,
    )
    assert refused.status_code == 409 and "archived" in refused.json()["error"]["message"]
    assert (
        len(
            client.get("/v1/campaigns", params={"include_archived": "true"}, headers=manager).json()
        )
        == 2
    )


def test_delete_a_contact(client, manager, runtime):
    contact(client, manager, "ada", email="ada@example.com", audiences=["everyone", "vip"])
    assert client.delete("/v1/contacts/ada", headers=manager).status_code == 204
    assert client.get("/v1/contacts/ada", headers=manager).status_code == 404
    assert client.delete("/v1/contacts/ada", headers=manager).status_code == 404
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 0
        assert s.scalar(select(func.count()).select_from(AudienceMember)) == 0


def test_a_campaign_that_may_still_send_is_not_archived(client, manager, runtime):
    template(client, manager, "sale", "email", subject="S", body="B")
    client.post("/v1/audiences", json={"name": "everyone"}, headers=manager)
    scheduled = campaign(
        client, manager, schedule={"cron": "0 9 * * 1", "timezone": "Europe/London"}
    )
    refused = client.post(f"/v1/campaigns/{scheduled['id']}/archive", headers=manager)
    assert (
        refused.status_code == 409
        and "cancel it before archiving" in refused.json()["error"]["message"]
    )
    assert (
        client.get(f"/v1/campaigns/{scheduled['id']}", headers=manager).json()["archived_at"]
        is None
    )
    assert (
        client.post(f"/v1/campaigns/{scheduled['id']}/cancel", headers=manager).status_code == 200
    )
    assert (
        client.post(f"/v1/campaigns/{scheduled['id']}/archive", headers=manager).status_code == 200
    )
