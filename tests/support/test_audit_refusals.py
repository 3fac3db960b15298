"""Refused sign-ins and refused admin actions leave audit entries with the time, the account,
the source address and the user agent; a password typed into the email field is never kept."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from notifier.api.app import create_app
from notifier.db.models import Suppression
from notifier.db.session import transaction
from notifier.support.models import AuditEntry
from tests.factories import email
from tests.support.console import SUPPORT_EMAIL, query_of, sign_in

AGENT = "Mozilla/5.0 (X11; Linux x86_64) audit-test"


@pytest.fixture
def anonymous(runtime, staff):
    with TestClient(
        create_app(runtime=runtime), raise_server_exceptions=False, headers={"User-Agent": AGENT}
    ) as c:
        yield c


def _entries(runtime, action: str) -> list[AuditEntry]:
    with runtime.sessions() as s:
        return list(
            s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        )


def test_failed_and_rate_limited_sign_ins_are_audited(anonymous, runtime):
    secret = "hunter2-is-my-password"
    assert sign_in(anonymous, SUPPORT_EMAIL, password="wrong password").status_code == 401
    assert sign_in(anonymous, "nobody@example.com").status_code == 401
    assert sign_in(anonymous, secret).status_code == 401  # a password in the email field
    for _ in range(9):
        sign_in(anonymous, SUPPORT_EMAIL, password="wrong password")
    assert sign_in(anonymous, SUPPORT_EMAIL).status_code == 429
    failed = _entries(runtime, "sign_in_failed")
    assert len(failed) == 13
    assert [e.actor for e in failed[:3]] == [
        SUPPORT_EMAIL,
        "nobody@example.com",
        "(not an email address)",
    ]
    assert failed[0].query == {"why": "wrong email or password", "account": "known"}
    assert query_of(failed[1])["account"] == "no such account" and failed[1].actor_id == "unknown"
    assert query_of(failed[-1])["why"] == "rate limited (account)"
    assert all(e.at and e.client_address == "testclient" and e.user_agent == AGENT for e in failed)
    with runtime.sessions() as s:
        dumped = repr([(e.actor, e.query) for e in s.scalars(select(AuditEntry))])
    assert secret not in dumped
    assert not _entries(runtime, "sign_in")


def test_refused_admin_actions_by_a_support_account_are_audited(console, client, auth, runtime):
    notification_id = client.post("/v1/notifications", json=email(), headers=auth).json()["id"]
    with transaction(runtime.sessions) as s:
        s.add(Suppression(channel="email", recipient="ada@example.com", reason="hard_bounce"))
    with runtime.sessions() as s:
        suppression_id = s.scalars(select(Suppression.id)).one()
    console.headers["User-Agent"] = AGENT
    assert (
        console.post(
            f"/support/notifications/{notification_id}/resend", data={"csrf_token": console.csrf}
        ).status_code
        == 403
    )
    assert (
        console.post(
            f"/support/suppressions/{suppression_id}/lift",
            data={"csrf_token": console.csrf, "reason": "customer phoned"},
        ).status_code
        == 403
    )
    assert console.get("/support/audit").status_code == 403
    assert console.post(f"/support/suppressions/{suppression_id}/lift", data={}).status_code == 403
    refused = _entries(runtime, "refused")
    assert [query_of(e)["action"] for e in refused] == [
        "resend",
        "lift_suppression",
        "view_audit",
        "form",
    ]
    assert {e.actor for e in refused} == {SUPPORT_EMAIL}
    assert query_of(refused[0])["why"] == "the role support may not do this"
    assert query_of(refused[0])["path"] == f"/support/notifications/{notification_id}/resend"
    assert query_of(refused[3])["why"] == "missing or wrong CSRF token"
    assert all(e.client_address == "testclient" and e.user_agent == AGENT for e in refused)
    with runtime.sessions() as s:
        assert s.get(Suppression, suppression_id).lifted_at is None
