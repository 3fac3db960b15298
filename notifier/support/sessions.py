"""Server-side console sessions behind a signed cookie.

The cookie carries a random token signed with a key derived from ``NOTIFIER_SECRET_KEY``
(itsdangerous); the database keeps only the token's SHA-256, the staff id, the CSRF token and the
times. A session ends when the person signs out, after ``IDLE_TIMEOUT`` without a request, or
``ABSOLUTE_TIMEOUT`` after sign-in, whichever comes first. The cookie is HttpOnly,
SameSite=Lax, limited to ``/support`` and Secure when the request came over HTTPS.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from notifier.db.models import utcnow
from notifier.services.models import Service
from notifier.support.models import StaffAccount, StaffRole, StaffSession
from notifier.support.staff import Staff

COOKIE = "notifier_support"
SIGN_IN_COOKIE = "notifier_support_signin"  # CSRF token of the sign-in form (no session yet)
COOKIE_PATH = "/support"
IDLE_TIMEOUT = timedelta(hours=2)
ABSOLUTE_TIMEOUT = timedelta(hours=8)
TOUCH_EVERY = timedelta(minutes=1)  # write last_seen_at at most this often
SIGN_IN_FORM_MAX_AGE = 3600


class CookieSigner:
    def __init__(self, secret_key: str) -> None:
        self._session = URLSafeSerializer(secret_key, salt="notifier.support.session")
        self._sign_in = URLSafeTimedSerializer(secret_key, salt="notifier.support.sign-in-form")

    def session_cookie(self, token: str) -> str:
        return self._session.dumps(token)

    def session_token(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            value = self._session.loads(cookie)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def sign_in_cookie(self, token: str) -> str:
        return self._sign_in.dumps(token)

    def sign_in_token(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            value = self._sign_in.loads(cookie, max_age=SIGN_IN_FORM_MAX_AGE)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, account: StaffAccount, client_address: str | None) -> str:
    """Open a session for ``account``; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        StaffSession(
            id=_digest(token),
            staff_id=account.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE_TIMEOUT,
            client_address=(client_address or "")[:100] or None,
        )
    )
    return token


def resume(session: Session, token: str | None) -> Staff | None:
    """The signed-in staff member for this token, or None if it is unknown, ended or expired."""
    if not token:
        return None
    return _resume_digest(session, _digest(token))


def _resume_digest(session: Session, digest: str) -> Staff | None:
    row = session.get(StaffSession, digest)
    if row is None or row.ended_at is not None:
        return None
    now = utcnow()
    if now >= row.expires_at or now - row.last_seen_at >= IDLE_TIMEOUT:
        row.ended_at = now
        return None
    account = session.get(StaffAccount, row.staff_id)
    if account is None or account.disabled_at is not None:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    role = StaffRole(account.role)
    service = None if account.service_id is None else session.get(Service, account.service_id)
    if role != StaffRole.PLATFORM_ADMIN and service is None:
        return None  # a service's account without its service sees nothing: it cannot sign in
    return Staff(
        id=account.id,
        email=account.email,
        role=role,
        session_id=row.id,
        csrf_token=row.csrf_token,
        service_id=service.id if service is not None else None,
        service_name=service.name if service is not None else None,
    )


def end(session: Session, session_id: str) -> None:
    row = session.get(StaffSession, session_id)
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def expired_at(row: StaffSession) -> datetime:
    return min(row.expires_at, row.last_seen_at + IDLE_TIMEOUT)
