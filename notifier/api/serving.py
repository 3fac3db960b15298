"""How uvicorn serves the API, in one place (``notifier api`` and the tests use it).

Behind a reverse proxy the client's address comes from ``X-Forwarded-For``, and the console's
per-address sign-in limit and its audit log depend on it. Trusting that header from anyone
(``FORWARDED_ALLOW_IPS="*"``) lets a client pick its own address with every request and walk
past the limit. So forwarded headers are trusted only from the proxies named in
``NOTIFIER_TRUSTED_PROXIES`` (addresses or networks; default ``127.0.0.1``), which override
uvicorn's ``FORWARDED_ALLOW_IPS``, and production refuses ``*``. uvicorn then reads the header
from the right and takes the first address that is not a trusted proxy, so whatever a client
writes into the header itself (``spoofed, real``) changes nothing.

With several worker processes uvicorn's supervisor pings each one and kills a process that does
not answer in time; ``NOTIFIER_API_WORKER_HEALTHCHECK_SECONDS`` (30) gives a process that is
still importing the app on a loaded machine time to come up instead of a kill-restart loop.
"""

from __future__ import annotations

from typing import Any

from notifier.config import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "proxy_headers": True,
        "forwarded_allow_ips": settings.trusted_proxy_list,
        "timeout_worker_healthcheck": settings.api_worker_healthcheck_seconds,
    }
