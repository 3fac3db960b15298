"""Public unsubscribe pages: ``GET /u/{token}`` asks, ``POST /u/{token}`` unsubscribes.

No login: the token itself is the proof (see :mod:`notifier.content.unsubscribe`: encrypted and
authenticated, so it can be neither forged nor enumerated). ``POST`` with the form body
``List-Unsubscribe=One-Click`` is RFC 8058's one-click unsubscribe, which mail providers send
on the user's behalf; the confirmation page's button posts the same body. Both are idempotent.
Responses are never cached and send no referrer (the token is in the URL).
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse

from notifier.api.deps import RuntimeDep
from notifier.campaigns.optout import opt_out
from notifier.content.unsubscribe import InvalidToken, Subscriber, UnsubscribeTokens
from notifier.db.session import transaction
from providers.interface import SuppressionReason

router = APIRouter(tags=["unsubscribe"], include_in_schema=False)
ONE_CLICK = "One-Click"
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;"
        "padding:0 1rem}button{font-size:1rem;padding:.6rem 1.2rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_HEADERS)


def _masked(address: str) -> str:
    local, _, domain = address.partition("@")
    if not domain:
        return address[:3] + "…" + address[-2:]
    return f"{local[:1]}…@{domain}"


def _subscriber(runtime: RuntimeDep, token: str) -> Subscriber | None:
    settings = runtime.settings
    try:
        return UnsubscribeTokens(settings.secret_key, settings.public_url).read(token)
    except InvalidToken:
        return None


def _invalid() -> HTMLResponse:
    return _page(
        "Link not valid",
        "<p>This unsubscribe link is not valid. Use the link from the message you received.</p>",
        404,
    )


@router.get("/u/{token}", response_class=HTMLResponse)
def confirm_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    subscriber = _subscriber(runtime, token)
    if subscriber is None:
        return _invalid()
    action = html.escape(f"/u/{token}", quote=True)
    return _page(
        "Unsubscribe",
        f"<p>Stop marketing {subscriber.channel.value} to "
        f"<strong>{html.escape(_masked(subscriber.recipient))}</strong>?</p>"
        f'<form method=post action="{action}">'
        f'<input type=hidden name="List-Unsubscribe" value="{ONE_CLICK}">'
        "<button type=submit>Unsubscribe</button></form>"
        "<p>Messages you need, such as receipts and security codes, will still arrive.</p>",
    )


@router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(
    token: str,
    runtime: RuntimeDep,
    list_unsubscribe: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
) -> HTMLResponse:
    subscriber = _subscriber(runtime, token)
    if subscriber is None:
        return _invalid()
    if list_unsubscribe != ONE_CLICK:
        return _page(
            "Unsubscribe",
            "<p>The request must carry <code>List-Unsubscribe=One-Click</code>.</p>",
            400,
        )
    with transaction(runtime.sessions) as session:
        opt_out(
            session,
            subscriber.channel,
            subscriber.recipient,
            SuppressionReason.UNSUBSCRIBED,
            "unsubscribe link (RFC 8058 one-click)",
            subscriber.service_id,
        )
    return _page(
        "You are unsubscribed",
        f"<p>We will not send marketing {subscriber.channel.value} to "
        f"{html.escape(_masked(subscriber.recipient))} any more.</p>",
    )
