"""Signing in and out of the console.

The sign-in form carries its own CSRF token (there is no session yet): a random value in a
signed, HttpOnly cookie that the form must echo. Attempts are rate-limited per account and per
client address with the shared limiter, before the password is checked, so guessing costs the
attacker time and us no Argon2 work once the limit is reached.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from notifier.api.deps import RuntimeDep
from notifier.db.session import transaction
from notifier.support import audit, sessions
from notifier.support.models import ActorKind, AuditAction
from notifier.support.staff import (
    Staff,
    StaffAccountError,
    check_password,
    find_by_email,
    normalise_email,
)
from notifier.support.web import (
    ConsoleRoute,
    FormStaffDep,
    PageRefused,
    client_address,
    render,
    signer,
)

ACCOUNT_RATE_LIMIT = "10/15minutes"
ADDRESS_RATE_LIMIT = "30/15minutes"

log = logging.getLogger("notifier.support")
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)  # under /support


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/support") and not value.startswith("//") and "\\" not in value:
        return value
    return "/support"


def _form(
    request: Request,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"csrf_token": token, "next": next_path, "email": email, "error": error, "notice": notice},
        status_code=status_code,
        headers=headers,
    )
    sessions.set_cookie(
        response,
        request,
        sessions.SIGN_IN_COOKIE,
        signer(request).sign_in_cookie(token),
        sessions.SIGN_IN_FORM_MAX_AGE,
    )
    return response


@router.get("/login")
def sign_in_page(
    request: Request,
    next: str | None = None,
    expired: str | None = None,
    signed_out: str | None = None,
) -> Response:
    notice = None
    if expired:
        notice = "Your session ended (signed out after a period of inactivity). Sign in again."
    elif signed_out:
        notice = "You are signed out."
    return _form(request, next_path=_safe_next(next), notice=notice)


@router.post("/login")
def sign_in(
    request: Request,
    runtime: RuntimeDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/support",
) -> Response:
    next_path = _safe_next(next)
    expected = signer(request).sign_in_token(request.cookies.get(sessions.SIGN_IN_COOKIE))
    if not expected or not csrf_token or not hmac.compare_digest(expected, csrf_token):
        raise PageRefused(
            403,
            "Sign-in form expired",
            "The sign-in form was too old or did not come from this console. "
            "Open the sign-in page again and retry.",
        )
    account_key = email.strip().lower()
    for rule, scope, ident in (
        (ACCOUNT_RATE_LIMIT, "support-sign-in-account", account_key),
        (ADDRESS_RATE_LIMIT, "support-sign-in-address", client_address(request)),
    ):
        verdict = runtime.limiter.hit(rule, scope, ident)
        if not verdict.allowed:
            minutes = max(1, math.ceil(verdict.retry_after / 60))
            log.warning("support.sign_in.rate_limited", extra={"scope": scope})
            _audit_failure(runtime, request, email, f"rate limited ({scope.rsplit('-', 1)[-1]})")
            return _form(
                request,
                next_path=next_path,
                email=email,
                error=f"Too many sign-in attempts. Try again in {minutes} minute"
                f"{'s' if minutes != 1 else ''}.",
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(verdict.retry_after)))},
            )
    with transaction(runtime.sessions) as session:
        account = check_password(session, email, password)
        if account is None:
            token = None
        else:
            token = sessions.start(session, account, client_address(request))
            audit.record(
                session,
                audit.Actor(ActorKind.STAFF, account.id, account.email, account.service_id),
                AuditAction.SIGN_IN,
                source=audit.Source.of(request),
            )
    if token is None or account is None:  # no account, no token
        log.info("support.sign_in.failed")
        _audit_failure(runtime, request, email, "wrong email or password")
        return _form(
            request,
            next_path=next_path,
            email=email,
            error="The email or password is wrong.",
            status_code=401,
        )
    log.info("support.sign_in.ok", extra={"staff_id": account.id})
    response = RedirectResponse(next_path, status_code=303)
    sessions.set_cookie(
        response,
        request,
        sessions.COOKIE,
        signer(request).session_cookie(token),
        int(sessions.ABSOLUTE_TIMEOUT.total_seconds()),
    )
    sessions.clear_cookie(response, request, sessions.SIGN_IN_COOKIE)
    return response


@router.post("/logout")
def sign_out(request: Request, runtime: RuntimeDep, staff: FormStaffDep) -> Response:
    _end(runtime, request, staff)
    response = RedirectResponse("/support/login?signed_out=1", status_code=303)
    sessions.clear_cookie(response, request, sessions.COOKIE)
    return response


def _end(runtime: RuntimeDep, request: Request, staff: Staff) -> None:
    with transaction(runtime.sessions) as session:
        sessions.end(session, staff.session_id)
        audit.record(
            session,
            audit.Actor.of_staff(staff),
            AuditAction.SIGN_OUT,
            source=audit.Source.of(request),
        )


def _audit_failure(runtime: RuntimeDep, request: Request, typed: str, why: str) -> None:
    """Audit a refused sign-in with the account it named. What was typed is kept only when it
    is an account's email or at least looks like an email address: people type passwords into
    the email field, and the audit log must not become a list of them."""
    with transaction(runtime.sessions) as session:
        try:
            address = normalise_email(typed)
        except StaffAccountError:
            address = ""
        account = find_by_email(session, address) if address else None
        name = account.email if account else (address or "(not an email address)")
        audit.record(
            session,
            # the account's service sees the failure; a name of no account belongs to none
            audit.Actor(
                ActorKind.STAFF,
                account.id if account else "unknown",
                name,
                account.service_id if account else None,
            ),
            AuditAction.SIGN_IN_FAILED,
            query={"why": why, "account": "known" if account else "no such account"},
            source=audit.Source.of(request),
        )
