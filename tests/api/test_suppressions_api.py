"""/v1/suppressions: list (filters, any spelling, keyset pages), add a manual one, lift one under
the console's rules (a reason always, never a STOP); every change audited, refusals store
nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from notifier.db.models import Suppression
from notifier.db.session import transaction
from notifier.support.models import AuditEntry
from tests.factories import api_key


@pytest.fixture
def ops(runtime) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key(runtime, 'platform', scopes=['suppressions:manage'])}"
    }


def _seed(runtime) -> dict[str, int]:
    rows = {
        "stop": Suppression(channel="sms", recipient="+447911123456", reason="stop"),
        "complaint": Suppression(channel="email", recipient="ada@example.com", reason="complaint"),
        "bounce": Suppression(channel="email", recipient="bob@example.com", reason="hard_bounce"),
    }
    with transaction(runtime.sessions) as s:
        s.add_all(rows.values())
        s.flush()
        return {k: v.id for k, v in rows.items()}


def _count(runtime, model) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_auth_matrix(client, auth, runtime):
    ids = _seed(runtime)
    routes = [
        ("get", "/v1/suppressions", None),
        ("post", "/v1/suppressions", {"channel": "email", "to": "eve@example.com"}),
        ("post", f"/v1/suppressions/{ids['bounce']}/lift", {"reason": "fixed"}),
    ]
    for method, path, body in routes:
        for headers, status in (({}, 401), ({"Authorization": "Bearer x"}, 401), (auth, 403)):
            response = getattr(client, method)(
                path, headers=headers, **({"json": body} if body else {})
            )
            assert response.status_code == status, (method, path, headers)
            assert response.json()["error"]["code"] in ("unauthenticated", "forbidden_scope")
    assert _count(runtime, Suppression) == 3 and _count(runtime, AuditEntry) == 0


def test_list_filters_any_spelling_and_pages(client, ops, runtime):
    ids = _seed(runtime)
    everything = client.get("/v1/suppressions", headers=ops).json()
    assert [i["id"] for i in everything["items"]] == [ids["bounce"], ids["complaint"], ids["stop"]]
    by_phone = client.get(
        "/v1/suppressions", params={"recipient": "07911 123456"}, headers=ops
    ).json()
    assert [i["reason"] for i in by_phone["items"]] == ["stop"]
    email_only = client.get(
        "/v1/suppressions", params={"channel": "email", "reason": "complaint"}, headers=ops
    )
    assert [i["id"] for i in email_only.json()["items"]] == [ids["complaint"]]
    first = client.get("/v1/suppressions", params={"limit": 2}, headers=ops).json()
    second = client.get(
        "/v1/suppressions", params={"limit": 2, "cursor": first["next_cursor"]}, headers=ops
    ).json()
    assert [i["id"] for i in first["items"] + second["items"]] == [
        i["id"] for i in everything["items"]
    ]
    assert second["next_cursor"] is None
    bad = client.get("/v1/suppressions", params={"cursor": "abc"}, headers=ops)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"
    assert client.get("/v1/suppressions", params={"reason": "nope"}, headers=ops).status_code == 422


def test_add_a_manual_suppression(client, ops, runtime):
    response = client.post(
        "/v1/suppressions",
        json={"channel": "sms", "to": "+44 7911 123457", "detail": "asked by letter"},
        headers=ops,
    )
    assert response.status_code == 201, response.text
    row = response.json()
    assert (row["recipient"], row["reason"], row["detail"]) == (
        "+447911123457",
        "manual",
        "asked by letter (by platform)",
    )
    again = client.post(
        "/v1/suppressions", json={"channel": "sms", "to": "07911 123457"}, headers=ops
    )
    assert again.status_code == 422  # a local number is not E.164: the same rule as intake
    for body, code in (
        ({"channel": "sms", "to": "not a number"}, "invalid_recipient"),
        ({"channel": "fax", "to": "x"}, "validation_error"),
        ({"channel": "email", "to": "a@example.com", "extra": 1}, "validation_error"),
    ):
        refused = client.post("/v1/suppressions", json=body, headers=ops)
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, code), body
    assert _count(runtime, Suppression) == 1
    with runtime.sessions() as s:
        (entry,) = s.scalars(select(AuditEntry).where(AuditEntry.action == "add_suppression"))
    assert entry.actor == "platform" and entry.query["recipient"] == "+447911123457"


def test_lift_follows_the_console_rules(client, ops, runtime):
    ids = _seed(runtime)
    stop = client.post(
        f"/v1/suppressions/{ids['stop']}/lift", json={"reason": "they phoned"}, headers=ops
    )
    assert stop.status_code == 409 and "START" in stop.json()["error"]["message"]
    no_reason = client.post(
        f"/v1/suppressions/{ids['complaint']}/lift", json={"reason": " "}, headers=ops
    )
    assert no_reason.status_code == 422 and no_reason.json()["error"]["code"] == "validation_error"
    missing = client.post(f"/v1/suppressions/{ids['complaint']}/lift", json={}, headers=ops)
    assert missing.status_code == 422
    with runtime.sessions() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Suppression)
                .where(Suppression.lifted_at.is_not(None))
            )
            == 0
        )
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "lift_suppression")
            )
            == 0
        )

    done = client.post(
        f"/v1/suppressions/{ids['complaint']}/lift",
        json={"reason": "complaint was a mistake, per ticket 88"},
        headers=ops,
    )
    assert done.status_code == 200, done.text
    assert done.json()["lifted_by"] == "API key platform" and done.json()["lifted_reason"]
    again = client.post(
        f"/v1/suppressions/{ids['complaint']}/lift", json={"reason": "x"}, headers=ops
    )
    assert again.status_code == 409
    assert (
        client.post("/v1/suppressions/999999/lift", json={"reason": "x"}, headers=ops).status_code
        == 404
    )
    with runtime.sessions() as s:
        (entry,) = s.scalars(select(AuditEntry).where(AuditEntry.action == "lift_suppression"))
    assert (
        entry.actor == "platform"
        and entry.query["reason"] == "complaint was a mistake, per ticket 88"
    )
