"""Rows carry their service, names stay with their owner, and unsubscribes are per service.

An unsubscribe from alpha's mail (through the signed link, as a recipient clicks it) suppresses
alpha's promotional sends and not beta's; a hard bounce stays global whichever service's message
bounced. Intake answers with the status it stored, so the check at intake is visible here.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from notifier.content.models import Template
from notifier.content.unsubscribe import UnsubscribeTokens
from notifier.db.models import Notification, Suppression
from notifier.db.session import transaction
from notifier.keys import Scope, create_key
from notifier.notifications import repository
from notifier.runtime import Runtime
from notifier.support.models import AuditEntry
from providers.interface import Channel
from tests.factories import email, make_settings

EVERY_SCOPE = [s.value for s in Scope if s != Scope.SERVICES]


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, public_url="https://notify.example.com")


def _service(client, platform_admin, runtime: Runtime, name: str) -> tuple[str, dict[str, str]]:
    created = client.post(
        "/v1/services", json={"name": name, "trial": False}, headers=platform_admin
    )
    assert created.status_code == 201, created.text
    service_id = created.json()["id"]
    with transaction(runtime.sessions) as session:
        _, key = create_key(session, f"{name}-key", EVERY_SCOPE, service_id=service_id)
    return service_id, {"Authorization": f"Bearer {key}"}


def _promotional(client, headers: dict[str, str], to: str) -> dict[str, Any]:
    response = client.post(
        "/v1/notifications", json=email(category="promotional", to=to), headers=headers
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_rows_carry_the_service_of_the_key(client, platform_admin, runtime) -> None:
    alpha, own = _service(client, platform_admin, runtime, "alpha")
    sent = client.post("/v1/notifications", json=email(), headers=own).json()
    template = client.post(
        "/v1/templates",
        json={"name": "alpha-t", "channel": "email", "subject": "S", "body": "B"},
        headers=own,
    )
    assert template.status_code == 201, template.text
    with runtime.sessions() as session:
        assert session.get(Notification, sent["id"]).service_id == alpha
        row = session.scalars(select(Template).where(Template.name == "alpha-t")).one()
        assert row.service_id == alpha


def test_a_name_another_service_uses_is_free_and_untouched(client, platform_admin, runtime) -> None:
    _, own = _service(client, platform_admin, runtime, "alpha")
    _, other = _service(client, platform_admin, runtime, "beta")
    body = {"name": "welcome", "channel": "email", "subject": "S", "body": "B"}
    assert client.post("/v1/templates", json=body, headers=own).status_code == 201
    theirs = client.post("/v1/templates", json={**body, "body": "beta's"}, headers=other)
    assert theirs.status_code == 201 and theirs.json()["latest_version"] == 1
    assert client.post("/v1/audiences", json={"name": "vip"}, headers=own).status_code == 201
    assert client.post("/v1/audiences", json={"name": "vip"}, headers=other).status_code == 201
    mine = client.get("/v1/templates/welcome", headers=own).json()
    assert mine["latest_version"] == 1 and mine["variants"][mine["default_locale"]]["body"] == "B"


def test_campaign_needs_own_template_and_audience(client, platform_admin, runtime) -> None:
    _, own = _service(client, platform_admin, runtime, "alpha")
    _, other = _service(client, platform_admin, runtime, "beta")
    client.post(
        "/v1/templates",
        json={"name": "sale", "channel": "email", "subject": "S", "body": "B"},
        headers=own,
    )
    client.post("/v1/audiences", json={"name": "everyone"}, headers=own)
    body = {"name": "x", "template": "sale", "audience": "everyone", "lane": "email.promotional"}
    refused = client.post("/v1/campaigns", json=body, headers=other)
    assert refused.status_code == 404, refused.text
    assert client.post("/v1/campaigns", json=body, headers=own).status_code == 201


def test_an_unsubscribe_belongs_to_its_service_and_a_bounce_to_everyone(
    client, platform_admin, runtime
) -> None:
    alpha, own = _service(client, platform_admin, runtime, "alpha")
    _, other = _service(client, platform_admin, runtime, "beta")
    settings = runtime.settings
    link = UnsubscribeTokens(settings.secret_key, settings.public_url).url(
        Channel.EMAIL, "ada@example.com", alpha
    )
    token = link.rsplit("/", 1)[1]
    clicked = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert clicked.status_code == 200, clicked.text
    assert _promotional(client, own, "ada@example.com")["status"] == "suppressed"
    assert _promotional(client, other, "ada@example.com")["status"] == "queued"
    # beta's suppressions API neither lists nor lifts alpha's unsubscribe
    with runtime.sessions() as session:
        unsubscribe = session.scalars(select(Suppression)).one()
        assert unsubscribe.service_id == alpha
    listed = client.get("/v1/suppressions", headers=other).json()["items"]
    assert unsubscribe.id not in [s["id"] for s in listed]
    lift = client.post(
        f"/v1/suppressions/{unsubscribe.id}/lift", json={"reason": "x"}, headers=other
    )
    assert lift.status_code == 404
    # a hard bounce of alpha's message suppresses the address for every service
    with transaction(runtime.sessions) as session:
        repository.suppress(session, "email", "bob@example.com", "hard_bounce", "550", None, alpha)
    assert _promotional(client, other, "bob@example.com")["status"] == "suppressed"
    assert _promotional(client, own, "bob@example.com")["status"] == "suppressed"
    with runtime.sessions() as session:
        bounce = session.scalars(select(Suppression).where(Suppression.reason == "hard_bounce"))
        assert [b.service_id for b in bounce] == [None]


def test_a_support_case_shows_only_its_services_suppressions(
    client, platform_admin, runtime
) -> None:
    alpha, own = _service(client, platform_admin, runtime, "alpha")
    beta, other = _service(client, platform_admin, runtime, "beta")
    with transaction(runtime.sessions) as session:
        repository.suppress(session, "email", "ada@example.com", "unsubscribed", "link", None, beta)
        repository.suppress(session, "email", "ada@example.com", "complaint", "fbl", None, beta)
    sent = _promotional(client, own, "ada@example.com")
    assert sent["status"] == "suppressed"  # the complaint is global; beta's unsubscribe is not
    case = client.get(f"/v1/support/notifications/{sent['id']}", headers=own)
    assert case.status_code == 200, case.text
    assert [s["reason"] for s in case.json()["suppressions"]] == ["complaint"]
    with runtime.sessions() as session:
        look = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "view_notification")
        ).one()
        assert look.query == {"service_id": alpha}  # the audit says whose row was looked at
    assert client.get(f"/v1/support/notifications/{sent['id']}", headers=other).status_code == 404
