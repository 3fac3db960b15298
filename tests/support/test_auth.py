"""Console sign-in, sessions, CSRF and roles, through the real HTTP interface."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from notifier.api.app import create_app
from notifier.db.models import Suppression, utcnow
from notifier.db.session import transaction
from notifier.support.models import StaffSession
from tests.factories import email
from tests.support.console import ADMIN_EMAIL, PASSWORD, SUPPORT_EMAIL, csrf_of, sign_in

GET_ROUTES = [
    "/support",
    "/support?q=ada%40example.com",
    "/support/notifications/00000000-0000-0000-0000-000000000000",
    "/support/recipient?address=ada%40example.com",
    "/support/audit",
]
POST_ROUTES = [
    "/support/logout",
    "/support/notifications/00000000-0000-0000-0000-000000000000/resend",
    "/support/suppressions/1/lift",
]


@pytest.fixture
def anonymous(runtime, staff):
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("path", GET_ROUTES)
def test_every_page_without_a_session_redirects_to_sign_in(anonymous, path):
    response = anonymous.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/support/login?next=")


@pytest.mark.parametrize("path", POST_ROUTES)
def test_every_action_without_a_session_redirects_to_sign_in(anonymous, path):
    response = anonymous.post(path, data={"csrf_token": "x", "reason": "x"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/support/login")


def test_a_forged_session_cookie_is_not_a_session(anonymous):
    anonymous.cookies.set("notifier_support", "forged.value", path="/support")
    assert anonymous.get("/support", follow_redirects=False).status_code == 303


def test_sign_in_sets_a_hardened_cookie_and_lands_on_next(anonymous):
    response = sign_in(
        anonymous, SUPPORT_EMAIL, next_path="/support/recipient?address=x%40example.com"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/support/recipient?address=x%40example.com"
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("notifier_support=")
    )
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/support" in lowered
    assert "secure" not in lowered  # plain HTTP here
    assert anonymous.get("/support").status_code == 200


def test_cookie_is_secure_over_https(runtime, staff):
    with TestClient(create_app(runtime=runtime), base_url="https://testserver") as c:
        response = sign_in(c, SUPPORT_EMAIL)
        cookie = next(
            h for h in response.headers.get_list("set-cookie") if h.startswith("notifier_support=")
        )
        assert "secure" in cookie.lower()


def test_sign_in_refuses_an_outside_next(anonymous):
    response = sign_in(anonymous, SUPPORT_EMAIL, next_path="//evil.example.com/support")
    assert response.headers["location"] == "/support"


def test_wrong_password_and_unknown_account_get_the_same_answer(anonymous):
    wrong = sign_in(anonymous, SUPPORT_EMAIL, password="not the password")
    unknown = sign_in(anonymous, "nobody@example.com")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "The email or password is wrong." in response.text
        assert not [
            h for h in response.headers.get_list("set-cookie") if h.startswith("notifier_support=")
        ]
    assert anonymous.get("/support", follow_redirects=False).status_code == 303


def test_sign_in_without_the_form_token_is_rejected(anonymous):
    response = anonymous.post(
        "/support/login",
        data={"email": SUPPORT_EMAIL, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert anonymous.get("/support", follow_redirects=False).status_code == 303


def test_sign_in_attempts_are_limited_per_account(anonymous):
    for _ in range(10):
        assert sign_in(anonymous, SUPPORT_EMAIL, password="guess guess guess").status_code == 401
    limited = sign_in(anonymous, SUPPORT_EMAIL)  # even the right password, now
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "Too many sign-in attempts" in limited.text
    assert sign_in(anonymous, ADMIN_EMAIL).status_code == 303  # another account is not locked


def test_sign_in_attempts_are_limited_per_client_address(anonymous):
    for i in range(30):
        assert sign_in(anonymous, f"guess{i}@example.com").status_code == 401
    assert sign_in(anonymous, ADMIN_EMAIL).status_code == 429


def test_sign_out_ends_the_session_on_the_server(console):
    stolen = dict(console.cookies.items())
    response = console.post(
        "/support/logout", data={"csrf_token": console.csrf}, follow_redirects=False
    )
    assert (
        response.status_code == 303
        and response.headers["location"] == "/support/login?signed_out=1"
    )
    assert console.get("/support", follow_redirects=False).status_code == 303
    for name, value in stolen.items():  # replaying the old cookie does not bring it back
        console.cookies.set(name, value, path="/support")
    assert console.get("/support", follow_redirects=False).status_code == 303


def test_idle_session_expires(console, runtime):
    with transaction(runtime.sessions) as s:
        s.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(hours=3)))
    response = console.get("/support", follow_redirects=False)
    assert response.status_code == 303 and "expired=1" in response.headers["location"]
    assert "Your session ended" in console.get(response.headers["location"]).text
    with runtime.sessions() as s:
        assert s.scalars(select(StaffSession)).one().ended_at is not None


def test_session_expires_at_its_absolute_end_even_when_active(console, runtime):
    with transaction(runtime.sessions) as s:
        s.execute(update(StaffSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert console.get("/support", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_post_without_the_csrf_token_is_rejected(admin_console, runtime, path):
    with transaction(runtime.sessions) as s:
        s.add(Suppression(channel="email", recipient="ada@example.com", reason="hard_bounce"))
    for data in ({"reason": "asked"}, {"reason": "asked", "csrf_token": "wrong"}):
        response = admin_console.post(path, data=data, follow_redirects=False)
        assert response.status_code == 403, path
        assert "security token" in response.text
    assert (
        admin_console.get("/support", follow_redirects=False).status_code == 200
    )  # still signed in
    with runtime.sessions() as s:
        assert s.scalars(select(Suppression)).one().lifted_at is None


def test_support_role_cannot_resend_lift_or_read_the_audit_log(console, client, auth, runtime):
    notification_id = client.post("/v1/notifications", json=email(), headers=auth).json()["id"]
    with transaction(runtime.sessions) as s:
        s.add(Suppression(channel="email", recipient="ada@example.com", reason="hard_bounce"))
    with runtime.sessions() as s:
        suppression_id = s.scalars(select(Suppression.id)).one()
    resend = console.post(
        f"/support/notifications/{notification_id}/resend", data={"csrf_token": console.csrf}
    )
    lift = console.post(
        f"/support/suppressions/{suppression_id}/lift",
        data={"csrf_token": console.csrf, "reason": "customer asked"},
    )
    assert resend.status_code == 403 and "Only admins" in resend.text
    assert lift.status_code == 403
    assert console.get("/support/audit").status_code == 403
    with runtime.sessions() as s:
        assert s.get(Suppression, suppression_id).lifted_at is None


def test_console_pages_carry_security_headers(console):
    response = console.get("/support")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_login_page_has_labelled_fields(anonymous):
    html = anonymous.get("/support/login").text
    assert '<label for="email">' in html and '<label for="password">' in html
    assert csrf_of(html)
