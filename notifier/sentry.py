"""Optional error reporting to Sentry (``NOTIFIER_SENTRY_DSN``), with personal data scrubbed.

Needs the ``sentry`` extra (``pip install notifier[sentry]``). Events are scrubbed before they
leave: request bodies, headers, cookies, query strings and local variables are dropped, and
anything shaped like an email address, phone number or API key is replaced by ``[redacted]``
in messages.
"""

from __future__ import annotations

import re
from typing import Any

from notifier.redaction import REDACTED

_PATTERNS = [
    re.compile(r"ntf_[0-9a-f]{12}_[A-Za-z0-9_\-]+"),
    re.compile(r"whsec_[A-Za-z0-9_\-]+"),
    re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"),
    re.compile(r"\+?\d[\d\s().\-]{7,}\d"),
]


def scrub_text(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def scrub_event(event: dict[str, Any], _hint: dict[str, Any] | None = None) -> dict[str, Any]:
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies", "headers", "query_string", "env"):
            request.pop(key, None)
    for exception in (event.get("exception") or {}).get("values", []):
        if isinstance(exception.get("value"), str):
            exception["value"] = scrub_text(exception["value"])
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    if isinstance(event.get("message"), str):
        event["message"] = scrub_text(event["message"])
    for crumb in (event.get("breadcrumbs") or {}).get("values", []):
        if isinstance(crumb.get("message"), str):
            crumb["message"] = scrub_text(crumb["message"])
        crumb.pop("data", None)
    event.pop("extra", None)
    return event


def init(dsn: str | None, environment: str) -> bool:
    if not dsn:
        return False
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.fastapi import FastApiIntegration
    except ImportError:
        import logging

        logging.getLogger("notifier").warning(
            "sentry.unavailable", extra={"hint": "pip install notifier[sentry]"}
        )
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        send_default_pii=False,
        before_send=scrub_event,
        integrations=[FastApiIntegration(), CeleryIntegration()],
        include_local_variables=False,
    )
    return True
