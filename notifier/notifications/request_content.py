"""A request's content: its template sources, and their rendering into what is stored and sent.

One function for intake's every path (inline or in the render pool, a stored template or the
request's own text); push data travels as strings, its sensitive values redacted in the copy
that is stored.
"""

from __future__ import annotations

from typing import Any

from notifier.content import templates
from notifier.content.templates import ResolvedTemplate
from notifier.notifications.schemas import EmailRequest, PushRequest, SmsRequest
from notifier.redaction import REDACTED
from notifier.render_pool import RenderPool
from notifier.rendering import Rendered, render_content


def sources(request: EmailRequest | SmsRequest | PushRequest) -> dict[str, str | None]:
    if isinstance(request, EmailRequest):
        return {"subject": request.subject, "body": request.body, "html": request.html}
    if isinstance(request, SmsRequest):
        return {"body": request.body}
    return {"title": request.title, "body": request.body}


def render_request(
    request: EmailRequest | SmsRequest | PushRequest,
    template: ResolvedTemplate | None,
    *,
    max_chars: dict[str, int],
    pool: RenderPool,
    timeout: float | None,
    owner: str | None,
) -> Rendered:
    """The rendered content (and its redacted copy) of a request, from its stored template or
    its own text, within ``max_chars`` and, unless plain, in ``pool``."""
    sensitive = frozenset(request.sensitive)
    options: dict[str, Any] = {
        "max_chars": max_chars,
        "pool": pool,
        "timeout": timeout,
        "owner": owner,
    }
    if template is not None:
        return templates.render(template, request.data, sensitive, **options)
    rendered = render_content(sources(request), request.data, sensitive, **options)
    if isinstance(request, PushRequest) and request.data:
        rendered.content["data"] = {k: str(v) for k, v in request.data.items()}
        rendered.redacted["data"] = {
            k: (REDACTED if k in sensitive else str(v)) for k, v in request.data.items()
        }
    return rendered
