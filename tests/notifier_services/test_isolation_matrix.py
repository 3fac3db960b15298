"""The isolation matrix: every route of the API app, with a key of the owning service, a key of
another service and a platform admin's key.

The routes are enumerated from the app itself, so a route added without a case here fails
:func:`test_every_route_has_a_case`. Object routes (an id or a name in the path): the owner gets
its answer, the other service a 404 exactly like a missing object (never 403), the platform
admin the owner's answer. Listings: the other service's results never contain the owner's rows;
the owner's and the admin's do. Runs on SQLite and on real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from notifier.api.app import create_app
from notifier.db.session import transaction
from notifier.keys import Scope, create_key
from notifier.runtime import Runtime
from tests.factories import email, make_settings
from tests.services import fresh_postgres_database

EVERY_SCOPE = [s.value for s in Scope if s != Scope.SERVICES]
Headers = dict[str, str]

# Routes outside the matrix, each with the reason it has no service-owned object to leak.
EXEMPT = {
    ("GET", "/openapi.json"): "the schema",
    ("GET", "/docs"): "documentation",
    ("GET", "/docs/oauth2-redirect"): "documentation",
    ("GET", "/redoc"): "documentation",
    ("GET", "/healthz"): "liveness, no data",
    ("GET", "/readyz"): "readiness, no data",
    ("GET", "/health/delivery"): "platform health, no per-service rows",
    ("GET", "/metrics"): "platform metrics",
    ("POST", "/v1/notifications"): "creates in the caller's service (tests of intake)",
    ("POST", "/v1/notifications/batch"): "creates in the caller's service (tests of intake)",
    ("POST", "/v1/receipts/twilio"): "provider callback, signed by the provider",
    ("POST", "/v1/receipts/ses"): "provider callback, signed by the provider",
    ("POST", "/v1/inbound/twilio/sms"): "provider callback, signed by the provider",
    ("GET", "/u/{token}"): "unsubscribe page, the signed token names its service",
    ("POST", "/u/{token}"): "unsubscribe, the signed token names its service",
    ("POST", "/v1/erasures"): "a person's erasure is platform-wide by law (admin scope)",
    ("POST", "/v1/keys"): "keys API: scoped by service in notifier/api/v1/keys.py",
    ("GET", "/v1/keys"): "keys API: scoped by service in notifier/api/v1/keys.py",
    ("POST", "/v1/keys/{key_id}/revoke"): "keys API: scoped by service in keys.py",
    ("POST", "/v1/keys/{key_id}/rotate"): "keys API: scoped by service in keys.py",
    ("POST", "/v1/services"): "platform admin only",
    ("GET", "/v1/services"): "platform admin only",
    ("GET", "/v1/services/{name}"): "platform admin only",
    ("PATCH", "/v1/services/{name}"): "platform admin only",
    ("GET", "/v1/services/{name}/allowed-recipients"): "platform admin only",
    ("POST", "/v1/services/{name}/allowed-recipients"): "platform admin only",
    ("DELETE", "/v1/services/{name}/allowed-recipients/{entry_id}"): "platform admin only",
    ("POST", "/v1/templates"): "creates in the caller's service: test_a_name_another_service_uses",
    ("POST", "/v1/audiences"): "creates in the caller's service: test_a_name_another_service_uses",
    ("POST", "/v1/campaigns"): "creates in the caller's service: test_campaign_needs_own_objects",
    ("POST", "/v1/suppressions"): "adds to the caller's service: test_suppression_scope",
    # keys and names are unique per service: these write the caller's own object of that name
    (
        "PUT",
        "/v1/contacts/{key}",
    ): "the caller's own contact: test_contacts_belong_to_their_service",
    ("POST", "/v1/audiences/{name}/import"): "into the caller's own audience of that name: "
    "test_contacts_belong_to_their_service",
}
# the staff console signs staff in with sessions, not keys; staff per service is its own work
CONSOLE_PREFIX = "/support"


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    own: Headers
    other: Headers
    admin: Headers
    ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """``path`` with the world's ids filled in; ``listed`` pulls what a listing returned (for a
    listing, ``marker`` names the owner's row that must appear in it); ``found`` the statuses
    that prove the owner's object was found (an action may meet a state conflict)."""

    path: str
    body: dict[str, Any] | None = None
    listed: Callable[[Any], list[str]] | None = None
    marker: str = ""
    found: frozenset[int] = frozenset({200, 201, 202, 204})
    content: bytes | None = None
    admin_path: str | None = None  # the admin's own object, when the owner's call removed it


def _items(key: str) -> Callable[[Any], list[str]]:
    return lambda body: [str(item[key]) for item in body["items"]]


FOUND_OR_CONFLICT = frozenset({200, 201, 202, 204, 409})

CASES: dict[tuple[str, str], Case] = {
    ("GET", "/v1/notifications/{notification_id}"): Case("/v1/notifications/{notification}"),
    ("GET", "/v1/notifications"): Case(
        "/v1/notifications", listed=_items("id"), marker="notification"
    ),
    ("POST", "/v1/notifications/{notification_id}/cancel"): Case(
        "/v1/notifications/{notification}/cancel", found=FOUND_OR_CONFLICT
    ),
    ("GET", "/v1/support/notifications"): Case(
        "/v1/support/notifications", listed=_items("id"), marker="notification"
    ),
    ("GET", "/v1/support/notifications/{notification_id}"): Case(
        "/v1/support/notifications/{notification}"
    ),
    ("GET", "/v1/suppressions"): Case(
        "/v1/suppressions", listed=_items("id"), marker="suppression"
    ),
    ("POST", "/v1/suppressions/{suppression_id}/lift"): Case(
        "/v1/suppressions/{suppression}/lift", body={"reason": "checked"}, found=FOUND_OR_CONFLICT
    ),
    ("GET", "/v1/templates/{name}"): Case("/v1/templates/{template}"),
    ("GET", "/v1/templates/{name}/versions"): Case("/v1/templates/{template}/versions"),
    ("POST", "/v1/templates/{name}/preview"): Case(
        "/v1/templates/{template}/preview", body={"data": {}}
    ),
    ("GET", "/v1/templates"): Case("/v1/templates", listed=_items("name"), marker="template"),
    ("POST", "/v1/templates/{name}/archive"): Case(
        "/v1/templates/{template}/archive", found=FOUND_OR_CONFLICT
    ),
    ("GET", "/v1/audiences/{name}"): Case("/v1/audiences/{audience}"),
    ("GET", "/v1/audiences"): Case("/v1/audiences", listed=_items("name"), marker="audience"),
    ("GET", "/v1/audiences/{name}/contacts"): Case("/v1/audiences/{audience}/contacts"),
    ("GET", "/v1/audiences/{name}/imports"): Case("/v1/audiences/{audience}/imports"),
    ("POST", "/v1/audiences/{name}/archive"): Case(
        "/v1/audiences/{audience}/archive", found=FOUND_OR_CONFLICT
    ),
    ("GET", "/v1/imports/{import_id}"): Case("/v1/imports/{import}"),
    ("GET", "/v1/contacts/{key}"): Case("/v1/contacts/{contact}"),
    # the owner deletes one contact, the platform admin another
    ("DELETE", "/v1/contacts/{key}"): Case(
        "/v1/contacts/{doomed}", admin_path="/v1/contacts/{also_doomed}"
    ),
    ("GET", "/v1/imports"): Case("/v1/imports", listed=_items("id"), marker="import"),
    ("GET", "/v1/campaigns"): Case(
        "/v1/campaigns", listed=lambda body: [c["id"] for c in body], marker="campaign"
    ),
    ("GET", "/v1/campaigns/{campaign_id}"): Case("/v1/campaigns/{campaign}"),
    ("PATCH", "/v1/campaigns/{campaign_id}"): Case(
        "/v1/campaigns/{campaign}", body={"throttle_per_minute": 60}, found=FOUND_OR_CONFLICT
    ),
    ("POST", "/v1/campaigns/{campaign_id}/run"): Case(
        "/v1/campaigns/{campaign}/run", found=FOUND_OR_CONFLICT
    ),
    ("POST", "/v1/campaigns/{campaign_id}/pause"): Case(
        "/v1/campaigns/{campaign}/pause", found=FOUND_OR_CONFLICT
    ),
    ("POST", "/v1/campaigns/{campaign_id}/resume"): Case(
        "/v1/campaigns/{campaign}/resume", found=FOUND_OR_CONFLICT
    ),
    ("POST", "/v1/campaigns/{campaign_id}/cancel"): Case(
        "/v1/campaigns/{campaign}/cancel", found=FOUND_OR_CONFLICT
    ),
    ("GET", "/v1/campaigns/{campaign_id}/runs/{run_id}"): Case(
        "/v1/campaigns/{campaign}/runs/{run}"
    ),
    ("GET", "/v1/campaigns/{campaign_id}/runs"): Case("/v1/campaigns/{campaign}/runs"),
    ("POST", "/v1/campaigns/{campaign_id}/archive"): Case(
        "/v1/campaigns/{campaign}/archive", found=FOUND_OR_CONFLICT
    ),
}


def _routes(app: Any) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        assert route.path is not None
        if route.path.startswith(CONSOLE_PREFIX) or route.path.startswith("/static-offline"):
            continue
        found.update((method, route.path) for method in route.methods or () if method != "HEAD")
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path):
    if request.param == "sqlite":
        yield make_settings(tmp_path, public_url="https://notify.example.com")
        return
    with fresh_postgres_database() as url:
        yield make_settings(tmp_path, database_url=url, public_url="https://notify.example.com")


def _service_key(world_client: TestClient, admin: Headers, runtime: Runtime, name: str) -> Headers:
    created = world_client.post("/v1/services", json={"name": name, "trial": False}, headers=admin)
    assert created.status_code == 201, created.text
    with transaction(runtime.sessions) as session:
        _, plaintext = create_key(
            session, f"{name}-key", EVERY_SCOPE, service_id=created.json()["id"]
        )
    return {"Authorization": f"Bearer {plaintext}"}


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def world(runtime: Runtime) -> Iterator[World]:
    """Two services, alpha (the owner) and beta; alpha owns one of every object."""
    with transaction(runtime.sessions) as session:
        _, admin_key = create_key(session, "platform", [*EVERY_SCOPE, Scope.SERVICES.value])
    admin = {"Authorization": f"Bearer {admin_key}"}
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
        own = _service_key(client, admin, runtime, "alpha")
        other = _service_key(client, admin, runtime, "beta")
        w = World(client, runtime, own, other, admin)
        _ok(
            client.post(
                "/v1/templates",
                json={"name": "alpha-sale", "channel": "email", "subject": "S", "body": "B"},
                headers=own,
            ),
            201,
        )
        w.ids["template"] = "alpha-sale"
        w.ids["audience"] = "alpha-list"
        _ok(
            client.put(
                "/v1/contacts/alpha-ada",
                json={
                    "email": "ada@example.com",
                    "audiences": ["alpha-list"],
                    "consent": {"email": True},
                },
                headers=own,
            )
        )
        job = _ok(
            client.post(
                "/v1/audiences/alpha-list/import",
                content=b"key,email\nalpha-bob,bob@example.com\n",
                headers={**own, "Content-Type": "text/csv"},
            )
        )
        w.ids["import"] = job["id"]
        w.ids["contact"], w.ids["doomed"] = "alpha-ada", "alpha-bob"
        _ok(client.put("/v1/contacts/alpha-carl", json={"email": "c@example.com"}, headers=own))
        w.ids["also_doomed"] = "alpha-carl"
        campaign = _ok(
            client.post(
                "/v1/campaigns",
                json={
                    "name": "alpha spring",
                    "template": "alpha-sale",
                    "audience": "alpha-list",
                    "lane": "email.promotional",
                },
                headers=own,
            ),
            201,
        )
        w.ids["campaign"] = campaign["id"]
        w.ids["run"] = _ok(client.post(f"/v1/campaigns/{campaign['id']}/run", headers=own), 202)[
            "id"
        ]
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        sent = _ok(client.post("/v1/notifications", json=email(send_at=later), headers=own), 202)
        w.ids["notification"] = sent["id"]
        suppression = _ok(
            client.post(
                "/v1/suppressions",
                json={"channel": "email", "to": "carol@example.com"},
                headers=own,
            ),
            201,
        )
        w.ids["suppression"] = str(suppression["id"])
        yield w


def _call(w: World, method: str, case: Case, headers: Headers) -> Any:
    path = (case.admin_path if headers is w.admin and case.admin_path else case.path).format(
        **w.ids
    )
    if case.content is not None:
        headers = {**headers, "Content-Type": "text/csv"}
        return w.client.request(method, path, content=case.content, headers=headers)
    return w.client.request(method, path, json=case.body, headers=headers)


def test_every_route_has_a_case(runtime: Runtime) -> None:
    routes = _routes(create_app(runtime=runtime))
    missing = sorted(routes - set(CASES) - set(EXEMPT))
    assert not missing, f"routes without an isolation case: {missing}"
    stale = sorted((set(CASES) | set(EXEMPT)) - routes)
    assert not stale, f"cases of routes that no longer exist: {stale}"


def test_isolation_matrix(world: World) -> None:
    """Every case, the other service first (so the owner's object is still as created), then
    the owner, then the platform admin."""
    failures: list[tuple[object, ...]] = []
    for (method, route), case in CASES.items():
        other = _call(world, method, case, world.other)
        own = _call(world, method, case, world.own)
        admin = _call(world, method, case, world.admin)
        if case.listed is not None:
            marker = world.ids[case.marker]
            seen = {
                name: case.listed(r.json()) if r.status_code == 200 else None
                for name, r in (("other", other), ("own", own), ("admin", admin))
            }
            if seen["other"] is None or marker in seen["other"]:
                failures.append((method, route, "other service sees the row", other.status_code))
            for name in ("own", "admin"):
                listed = seen[name]
                if listed is None or marker not in listed:
                    failures.append((method, route, f"{name} misses the row", seen[name]))
            continue
        if other.status_code != 404 or other.json()["error"]["code"] != "not_found":
            failures.append((method, route, "other", other.status_code, other.text[:200]))
        if own.status_code not in case.found:
            failures.append((method, route, "own", own.status_code, own.text[:200]))
        if admin.status_code not in case.found | FOUND_OR_CONFLICT:
            failures.append((method, route, "admin", admin.status_code, admin.text[:200]))
    assert not failures, failures
