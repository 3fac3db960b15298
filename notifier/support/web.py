"""The console's web plumbing: templates, the signed-in dependency, CSRF, error pages.

Console routes use ``ConsoleRoute``, which turns the console's own refusals into pages (a
redirect to sign-in, a 403 or 404 page) instead of the API's JSON envelope, and adds the
security headers every console page carries (no caching of personal data, no framing, a CSP
that allows no script at all: the console needs none).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from notifier.api.deps import RuntimeDep
from notifier.db.session import transaction
from notifier.runtime import Runtime
from notifier.support import audit, sessions
from notifier.support.models import AuditAction
from notifier.support.staff import Staff
from notifier.support.summary import when

HERE = Path(__file__).resolve().parent
SIGN_IN_PATH = "/support/login"

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


class SignInRequired(Exception):
    def __init__(self, next_path: str, expired: bool = False) -> None:
        self.next_path = next_path
        self.expired = expired


class PageRefused(Exception):
    """A refusal shown as a page: 403 (not allowed, bad CSRF token), 404, 429."""

    def __init__(
        self, status_code: int, title: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message
        self.headers = headers or {}


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} ms"


def short_id(value: str) -> str:
    """A notification id as the console shows it in lists: its last 8 characters. Ids are
    time-ordered (``notifier.db.models.new_id``), so their first characters are the same for
    every notification of the same minute; the last ones are random."""
    return value[-8:]


def _query(base: dict[str, Any], **changes: Any) -> str:
    merged = {**base, **changes}
    return urlencode({k: v for k, v in merged.items() if v is not None})


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["ms"] = _ms
    env.filters["short_id"] = short_id
    env.filters["urlquote"] = lambda v: quote(str(v), safe="")
    env.globals["query"] = _query
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    staff: Staff | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    html = (
        environment()
        .get_template(template)
        .render(request=request, staff=staff, now=datetime.now(), **context)
    )
    return HTMLResponse(html, status_code=status_code, headers=headers)


def signer(request: Request) -> sessions.CookieSigner:
    return _signer(request.app.state.runtime.settings.secret_key)


@lru_cache(maxsize=4)
def _signer(secret_key: str) -> sessions.CookieSigner:
    return sessions.CookieSigner(secret_key)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def current_staff(request: Request, runtime: RuntimeDep) -> Staff:
    token = signer(request).session_token(request.cookies.get(sessions.COOKIE))
    with transaction(runtime.sessions) as session:
        staff = sessions.resume(session, token)
    if staff is None:
        next_path = _here(request) if request.method == "GET" else "/support"
        raise SignInRequired(next_path, expired=token is not None)
    return staff


StaffDep = Annotated[Staff, Depends(current_staff)]


def audit_refusal(
    request: Request, runtime: Runtime, staff: Staff, action: str, why: str, **query: Any
) -> None:
    """Write the ``refused`` audit row in its own transaction (the refused action writes none)."""
    with transaction(runtime.sessions) as session:
        audit.record(
            session,
            audit.Actor.of_staff(staff),
            AuditAction.REFUSED,
            query={"action": action, "path": request.url.path, "why": why, **query},
            source=audit.Source.of(request),
        )


async def staff_with_valid_form(request: Request, runtime: RuntimeDep, staff: StaffDep) -> Staff:
    """The signed-in staff member, after checking the form's CSRF token against the session's."""
    form = await request.form()
    token = form.get("csrf_token")
    if not isinstance(token, str) or not hmac.compare_digest(token, staff.csrf_token):
        await run_in_threadpool(
            audit_refusal, request, runtime, staff, "form", "missing or wrong CSRF token"
        )
        raise PageRefused(
            403,
            "Form expired",
            "This form was not sent from a page of this console (its security token is missing "
            "or wrong). Go back, reload the page and try again.",
        )
    return staff


FormStaffDep = Annotated[Staff, Depends(staff_with_valid_form)]


def require_admin(request: Request, runtime: Runtime, staff: Staff, action: str) -> None:
    """Refuse (and audit the refusal of) an admin-only ``action`` to a support account."""
    if not staff.is_admin:
        audit_refusal(request, runtime, staff, action, f"the role {staff.role} may not do this")
        raise PageRefused(
            403, "Not allowed", "Only admins can do this. Your account can search and read."
        )


def require_platform_admin(request: Request, runtime: Runtime, staff: Staff, action: str) -> None:
    """Refuse (and audit the refusal of) a platform admin's ``action`` (managing services) to
    anyone else."""
    if not staff.is_platform_admin:
        audit_refusal(request, runtime, staff, action, f"the role {staff.role} may not do this")
        raise PageRefused(
            403, "Not allowed", "Only platform admins manage services. Your account cannot."
        )


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handle(request)
            except SignInRequired as e:
                params = {"next": e.next_path}
                if e.expired:
                    params["expired"] = "1"
                response = RedirectResponse(f"{SIGN_IN_PATH}?{urlencode(params)}", status_code=303)
                if e.expired:
                    sessions.clear_cookie(response, request, sessions.COOKIE)
            except PageRefused as e:
                response = render(
                    request,
                    "error.html",
                    {"title": e.title, "message": e.message},
                    status_code=e.status_code,
                    headers=e.headers,
                )
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return console_handler
