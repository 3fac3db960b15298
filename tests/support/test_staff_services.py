"""Staff per service over every console page, through the real sign-in and CSRF: staff of
billing see billing's rows and get the same "not found" for growth's as for rows that do not
exist; a platform admin sees both; every audit row names the service the look belonged to."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from notifier.api.app import create_app
from notifier.campaigns.models import Audience, Campaign
from notifier.db.models import Notification, Suppression, new_id, utcnow
from notifier.db.session import transaction
from notifier.runtime import Runtime
from notifier.statuses import Status
from notifier.support.models import AuditEntry, StaffAccount, StaffRole
from notifier.support.staff import StaffAccountError, create_staff
from notifier.support.web import short_id
from tests.factories import insert_notifications, notification_row
from tests.notifier_services.helpers import service
from tests.support.console import PASSWORD, signed_in

RECIPIENT = "shared@example.com"  # both services wrote to this person


@dataclass
class World:
    billing: str
    growth: str
    billing_notification: str
    growth_notification: str
    billing_suppression: int  # billing's own (manual)
    growth_suppression: int  # growth's own (manual)
    global_suppression: int  # a hard bounce, seen by every service


def _seed(runtime: Runtime) -> World:
    billing, growth = service(runtime, "billing"), service(runtime, "growth")
    rows = []
    for owner, reference in ((billing, "billing-ref"), (growth, "growth-ref")):
        row = notification_row(
            Status.FAILED,
            recipient=RECIPIENT,
            reference=reference,
            content={"subject": "hi", "text": f"from {reference}"},
        )
        row["service_id"] = owner
        rows.append(row)
    insert_notifications(runtime, rows)
    with transaction(runtime.sessions) as s:
        suppressions = [
            Suppression(
                channel="email",
                recipient=RECIPIENT,
                reason=reason,
                created_at=utcnow(),
                service_id=owner,
            )
            for reason, owner in (("manual", billing), ("manual", growth), ("hard_bounce", None))
        ]
        s.add_all(suppressions)
        for owner, name in ((billing, "billing-spring"), (growth, "growth-spring")):
            audience = Audience(id=new_id(), name=f"{name}-audience", service_id=owner)
            s.add(audience)
            s.flush()
            s.add(
                Campaign(
                    name=name,
                    service_id=owner,
                    template_name="t",
                    audience_id=audience.id,
                    lane="email.promotional",
                    status="draft",
                )
            )
        s.flush()
        ids = [x.id for x in suppressions]
    return World(billing, growth, rows[0]["id"], rows[1]["id"], *ids)


STAFF = {
    "billing-support": (StaffRole.SUPPORT, "billing"),
    "billing-admin": (StaffRole.ADMIN, "billing"),
    "growth-admin": (StaffRole.ADMIN, "growth"),
    "platform": (StaffRole.PLATFORM_ADMIN, None),
}


@pytest.fixture
def world(runtime: Runtime) -> World:
    seeded = _seed(runtime)
    with transaction(runtime.sessions) as s:
        for who, (role, owner) in STAFF.items():
            service_id = {"billing": seeded.billing, "growth": seeded.growth}.get(owner or "")
            create_staff(s, f"{who}@example.com", role, PASSWORD, service_id)
    return seeded


@pytest.fixture
def as_staff(runtime: Runtime, world: World) -> Iterator[dict[str, TestClient]]:
    clients = {}
    try:
        for who in STAFF:
            c = TestClient(create_app(runtime=runtime), raise_server_exceptions=False)
            c.__enter__()
            c.csrf = signed_in(c, f"{who}@example.com")
            clients[who] = c
        yield clients
    finally:
        for c in clients.values():
            c.__exit__(None, None, None)


def _not_found_page(client: TestClient, path: str, real_id: str) -> str:
    """The page for ``path`` with the id in it replaced, to compare with a made-up id's."""
    response = client.get(path)
    assert response.status_code == 404, response.text
    return response.text.replace(real_id, "ID")


def test_the_notification_page(as_staff, world):
    billing = as_staff["billing-support"]
    own = billing.get(f"/support/notifications/{world.billing_notification}")
    assert own.status_code == 200 and "billing-ref" in own.text
    made_up = new_id()
    other = _not_found_page(
        billing, f"/support/notifications/{world.growth_notification}", world.growth_notification
    )
    assert other == _not_found_page(billing, f"/support/notifications/{made_up}", made_up)
    assert "growth-ref" not in other
    platform = as_staff["platform"]
    for nid in (world.billing_notification, world.growth_notification):
        assert platform.get(f"/support/notifications/{nid}").status_code == 200


def test_the_search_and_its_caller_list(as_staff, world):
    def found(who: str) -> set[str]:
        page = as_staff[who].get("/support", params={"q": RECIPIENT}).text
        return {ref for ref in ("billing-ref", "growth-ref") if ref in page}

    assert found("billing-support") == {"billing-ref"}
    assert found("growth-admin") == {"growth-ref"}
    assert found("platform") == {"billing-ref", "growth-ref"}
    # a search by the other service's notification id finds nothing
    page = as_staff["billing-support"].get("/support", params={"q": world.growth_notification})
    assert page.status_code == 200 and "growth-ref" not in page.text


def test_the_recipient_page_and_its_suppressions(as_staff, world):
    page = as_staff["billing-admin"].get("/support/recipient", params={"address": RECIPIENT}).text
    assert "billing-ref" in page and "growth-ref" not in page
    lift = "/support/suppressions/{}/lift"
    assert lift.format(world.billing_suppression) in page
    assert lift.format(world.global_suppression) in page  # a bounce is every service's
    assert lift.format(world.growth_suppression) not in page
    everything = as_staff["platform"].get("/support/recipient", params={"address": RECIPIENT})
    assert lift.format(world.growth_suppression) in everything.text


def test_resend_of_another_services_notification_is_not_found(as_staff, world, runtime):
    admin = as_staff["billing-admin"]

    def resend(nid: str):
        return admin.post(
            f"/support/notifications/{nid}/resend",
            data={"csrf_token": admin.csrf, "reason": "asked"},
            follow_redirects=False,
        )

    # a manual suppression of billing's blocks its own resend: lift it through the page first
    lifted = admin.post(
        f"/support/suppressions/{world.billing_suppression}/lift",
        data={"csrf_token": admin.csrf, "reason": "asked", "back": "/support"},
        follow_redirects=False,
    )
    assert lifted.status_code == 303
    other, made_up = resend(world.growth_notification), resend(new_id())
    assert other.status_code == made_up.status_code == 404
    assert "growth-ref" not in other.text
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 2  # nothing new
        touched = s.get(Notification, world.growth_notification)
        assert touched is not None and touched.status == Status.FAILED.value
    # billing's own is blocked by the global bounce (the same rule as before services)
    own = resend(world.billing_notification)
    assert own.status_code == 409 and "Lift the suppression first" in own.text
    growth_admin = as_staff["growth-admin"]
    refused = growth_admin.post(
        f"/support/notifications/{world.billing_notification}/resend",
        data={"csrf_token": growth_admin.csrf, "reason": "asked"},
    )
    assert refused.status_code == 404


def test_lifting_another_services_suppression_is_not_found(as_staff, world, runtime):
    admin = as_staff["billing-admin"]

    def lift(suppression_id: int):
        return admin.post(
            f"/support/suppressions/{suppression_id}/lift",
            data={"csrf_token": admin.csrf, "reason": "asked", "back": "/support"},
            follow_redirects=False,
        )

    other, made_up = lift(world.growth_suppression), lift(999_999)
    assert other.status_code == made_up.status_code == 404
    assert other.text.replace(str(world.growth_suppression), "N") == made_up.text.replace(
        "999999", "N"
    )
    with runtime.sessions() as s:
        row = s.get(Suppression, world.growth_suppression)
        assert row is not None and row.lifted_at is None
    assert lift(world.global_suppression).status_code == 303  # a bounce is every service's
    platform = as_staff["platform"]
    ok = platform.post(
        f"/support/suppressions/{world.growth_suppression}/lift",
        data={"csrf_token": platform.csrf, "reason": "asked", "back": "/support"},
        follow_redirects=False,
    )
    assert ok.status_code == 303


def test_the_campaigns_page(as_staff, world):
    billing = as_staff["billing-support"].get("/support/campaigns").text
    assert "billing-spring" in billing and "growth-spring" not in billing
    platform = as_staff["platform"].get("/support/campaigns").text
    assert "billing-spring" in platform and "growth-spring" in platform


def test_audit_rows_carry_the_service_and_the_page_keeps_to_it(as_staff, world, runtime):
    as_staff["billing-support"].get(f"/support/notifications/{world.billing_notification}")
    as_staff["growth-admin"].get(f"/support/notifications/{world.growth_notification}")
    as_staff["platform"].get(f"/support/notifications/{world.growth_notification}")
    as_staff["platform"].get("/support", params={"q": RECIPIENT})
    as_staff["billing-support"].get("/support", params={"q": RECIPIENT})
    with runtime.sessions() as s:
        rows = s.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.service_id).order_by(
                AuditEntry.id
            )
        ).all()
    looks = [r for r in rows if r.action in ("view_notification", "search")]
    assert looks == [
        ("billing-support@example.com", "view_notification", world.billing),
        ("growth-admin@example.com", "view_notification", world.growth),
        # a platform admin's look at one notification belongs to its service ...
        ("platform@example.com", "view_notification", world.growth),
        # ... a search across every service to none
        ("platform@example.com", "search", None),
        ("billing-support@example.com", "search", world.billing),
    ]
    signed_in_rows = {(r.actor, r.service_id) for r in rows if r.action == "sign_in"}
    assert ("billing-admin@example.com", world.billing) in signed_in_rows
    assert ("platform@example.com", None) in signed_in_rows

    growth_page = as_staff["growth-admin"].get("/support/audit").text
    assert "growth-admin@example.com" in growth_page
    assert "billing-support@example.com" not in growth_page
    assert "platform@example.com" in growth_page  # the platform admin's look at growth's
    assert short_id(world.billing_notification) not in growth_page
    assert as_staff["billing-support"].get("/support/audit").status_code == 403  # support
    platform = as_staff["platform"]
    everything = platform.get("/support/audit").text
    assert "billing-support@example.com" in everything and "growth-admin@example.com" in everything
    only_billing = platform.get("/support/audit", params={"service": "billing"}).text
    assert "billing-support@example.com" in only_billing
    assert "growth-admin@example.com" not in only_billing
    # a service admin cannot widen the page by naming another service
    named = as_staff["growth-admin"].get("/support/audit", params={"service": "billing"}).text
    assert "billing-support@example.com" not in named


def test_the_services_page(as_staff, world):
    billing = as_staff["billing-support"].get("/support/services")
    assert billing.status_code == 200
    assert 'id="service-billing"' in billing.text and 'id="service-growth"' not in billing.text
    platform = as_staff["platform"].get("/support/services").text
    assert 'id="service-billing"' in platform and 'id="service-growth"' in platform
    assert 'id="service-default"' in platform


def test_accounts_belong_to_one_service_or_to_the_platform(runtime, world):
    with transaction(runtime.sessions) as s:
        with pytest.raises(StaffAccountError, match="belongs to a service"):
            create_staff(s, "nobody@example.com", StaffRole.SUPPORT, PASSWORD, None)
        admin = create_staff(s, "p2@example.com", StaffRole.PLATFORM_ADMIN, PASSWORD, world.billing)
        assert admin.service_id is None  # a platform admin belongs to no service
    with runtime.sessions() as s:
        roles = dict(s.execute(select(StaffAccount.email, StaffAccount.service_id)).tuples().all())
    assert roles["billing-admin@example.com"] == world.billing


def test_the_support_api_keeps_to_the_keys_service_and_audits_it(client, runtime, world):
    from notifier import keys as key_store

    def key(name: str, service_id: str, scopes: list[str]) -> dict[str, str]:
        with transaction(runtime.sessions) as s:
            _, plaintext = key_store.create_key(s, name, scopes, None, None, service_id)
        return {"Authorization": f"Bearer {plaintext}"}

    billing = key("billing-desk", world.billing, ["support:read"])
    platform = key("platform-desk", world.billing, ["support:read", "services:manage"])
    found = client.get("/v1/support/notifications", params={"q": RECIPIENT}, headers=billing)
    assert [n["id"] for n in found.json()["items"]] == [world.billing_notification]
    other = client.get(f"/v1/support/notifications/{world.growth_notification}", headers=billing)
    made_up = client.get(f"/v1/support/notifications/{new_id()}", headers=billing)
    assert other.status_code == made_up.status_code == 404
    assert other.json() == made_up.json()
    everything = client.get("/v1/support/notifications", params={"q": RECIPIENT}, headers=platform)
    assert len(everything.json()["items"]) == 2
    viewed = client.get(f"/v1/support/notifications/{world.growth_notification}", headers=platform)
    assert viewed.status_code == 200
    with runtime.sessions() as s:
        rows = s.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.service_id).order_by(
                AuditEntry.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("billing-desk", "search", world.billing),
        ("platform-desk", "search", None),
        ("platform-desk", "view_notification", world.growth),
    ]


def test_staff_create_takes_the_service_and_the_role(runtime, settings, world, monkeypatch):
    from typer.testing import CliRunner

    from notifier.cli import app

    monkeypatch.setenv("NOTIFIER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def create(*args: str):
        return runner.invoke(app, ["staff", "create", *args], input=f"{PASSWORD}\n")

    by_name = create("--email", "b1@example.com", "--role", "admin", "--service", "billing")
    assert by_name.exit_code == 0 and "the service billing" in by_name.output, by_name.output
    by_id = create("--email", "g1@example.com", "--service", world.growth)
    assert by_id.exit_code == 0 and "the service growth" in by_id.output
    default = create("--email", "d1@example.com")
    assert default.exit_code == 0 and "the service default" in default.output
    platform = create("--email", "p1@example.com", "--role", "platform_admin")
    assert platform.exit_code == 0 and "every service" in platform.output
    refused = create(
        "--email", "p2@example.com", "--role", "platform_admin", "--service", "billing"
    )
    assert refused.exit_code == 2 and "belongs to no service" in refused.output
    unknown = create("--email", "u@example.com", "--service", "nobody")
    assert unknown.exit_code == 2 and "no service 'nobody'" in unknown.output
    with runtime.sessions() as s:
        made = dict(
            s.execute(
                select(StaffAccount.email, StaffAccount.service_id).where(
                    StaffAccount.email.in_(
                        ["b1@example.com", "g1@example.com", "d1@example.com", "p1@example.com"]
                    )
                )
            )
            .tuples()
            .all()
        )
    assert made == {
        "b1@example.com": world.billing,
        "g1@example.com": world.growth,
        "d1@example.com": "00000000-0000-4000-8000-000000000000",
        "p1@example.com": None,
    }
    listed = runner.invoke(app, ["staff", "list"])
    assert "billing" in listed.output and "(every service)" in listed.output


def test_a_platform_admin_manages_services_and_no_one_else(as_staff, world, runtime):
    from notifier.services.models import Service

    platform = as_staff["platform"]

    def post(client: TestClient, path: str, **data: str):
        return client.post(
            path,
            data={"csrf_token": client.csrf, **data},
            follow_redirects=False,
        )

    created = post(platform, "/support/services", name="search")
    assert created.status_code == 303, created.text
    assert "Lift trial mode" in platform.get("/support/services").text
    assert post(platform, "/support/services/search/trial", trial="off").status_code == 303
    assert post(platform, "/support/services", name="search").status_code == 409
    assert post(platform, "/support/services", name="Not A Name").status_code == 422
    assert post(platform, "/support/services/nobody/trial", trial="off").status_code == 404
    admin = as_staff["billing-admin"]
    assert post(admin, "/support/services", name="sneaky").status_code == 403
    assert post(admin, "/support/services/billing/trial", trial="on").status_code == 403
    assert "Create service" not in admin.get("/support/services").text
    with runtime.sessions() as s:
        services = dict(s.execute(select(Service.name, Service.trial)).tuples().all())
        audited = s.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.service_id)
            .where(AuditEntry.action.in_(["create_service", "update_service", "refused"]))
            .order_by(AuditEntry.id)
        ).all()
    assert services["search"] is False and "sneaky" not in services
    assert services["billing"] is False  # the refused change changed nothing
    search_id = next(sid for a, action, sid in audited if action == "create_service")
    assert [tuple(r) for r in audited] == [
        ("platform@example.com", "create_service", search_id),
        ("platform@example.com", "update_service", search_id),
        ("billing-admin@example.com", "refused", world.billing),
        ("billing-admin@example.com", "refused", world.billing),
    ]


def test_a_platform_admin_narrows_a_search_to_one_service(as_staff, world, runtime):
    platform = as_staff["platform"]
    both = platform.get("/support", params={"q": RECIPIENT}).text
    assert '<th scope="col">Service</th>' in both  # across services, each row names its own
    narrowed = platform.get("/support", params={"q": RECIPIENT, "service": "growth"}).text
    assert "growth-ref" in narrowed and "billing-ref" not in narrowed
    with runtime.sessions() as s:
        searched = s.scalars(
            select(AuditEntry.service_id)
            .where(AuditEntry.action == "search", AuditEntry.actor == "platform@example.com")
            .order_by(AuditEntry.id)
        ).all()
    assert searched == [None, world.growth]  # every service, then growth's
    # staff of a service cannot widen or move their search by naming another one
    billing = as_staff["billing-support"]
    moved = billing.get("/support", params={"q": RECIPIENT, "service": "growth"}).text
    assert "billing-ref" in moved and "growth-ref" not in moved
    assert '<th scope="col">Service</th>' not in moved


def test_a_scope_fails_closed_for_staff_of_no_service() -> None:
    from notifier.ownership import ALL_SERVICES, NO_SERVICE, visible
    from notifier.support.staff import Staff

    orphan = Staff("s", "o@example.com", StaffRole.SUPPORT, "sid", "csrf", service_id=None)
    assert orphan.scope == NO_SERVICE and not visible("any-service", orphan.scope)
    platform = Staff("p", "p@example.com", StaffRole.PLATFORM_ADMIN, "sid", "csrf")
    assert platform.scope is ALL_SERVICES
