"""Helpers for driving the support console through its real HTTP interface in tests."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from notifier.db.session import transaction
from notifier.runtime import Runtime
from notifier.support.models import AuditEntry, StaffRole
from notifier.support.staff import create_staff

SUPPORT_EMAIL = "sam.support@example.com"
ADMIN_EMAIL = "alex.admin@example.com"
PASSWORD = "correct horse battery staple"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_staff(runtime: Runtime, email: str, role: StaffRole, password: str = PASSWORD) -> None:
    with transaction(runtime.sessions) as session:
        create_staff(session, email, role, password)


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD, next_path: str = "/support"):
    page = client.get("/support/login")
    assert page.status_code == 200
    return client.post(
        "/support/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": next_path,
        },
        follow_redirects=False,
    )


def signed_in(client: TestClient, email: str) -> str:
    """Sign in and return a CSRF token for the session's forms."""
    response = sign_in(client, email)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/support").text)


def found(pattern: str, text: str, flags: int = 0) -> str:
    """The first group of ``pattern``'s first match in ``text``; fails the test without one."""
    match = re.search(pattern, text, flags)
    assert match, f"{pattern!r} is not in the text"
    return match.group(1)


def query_of(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry's query, which a test expects it to have."""
    assert entry.query is not None, f"audit entry {entry.id} has no query"
    return entry.query
