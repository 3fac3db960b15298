"""Fetching what SNS points us to (its signing certificate, a SubscribeURL) over https.

Callers have already checked the URL (https, an allowed SNS host, port 443) before fetching.
The server certificate is verified against the system's trust store; httpx reads
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` and the usual proxy variables, so a deployment behind an
egress proxy or with a private trust store configures it the standard way. Redirects are not
followed (they would leave the checked host), answers are bounded in size, and each call has a
short timeout: a receipts endpoint must answer fast.
"""

from __future__ import annotations

import httpx

MAX_ANSWER_BYTES = 64 * 1024


class AnswerTooLarge(Exception):
    pass


class HttpsFetcher:
    def __init__(self, timeout_seconds: float = 5.0) -> None:
        self.timeout_seconds = timeout_seconds

    def __call__(self, url: str) -> bytes:
        with (
            httpx.Client(timeout=self.timeout_seconds, follow_redirects=False) as client,
            client.stream("GET", url) as response,
        ):
            response.raise_for_status()
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise AnswerTooLarge(f"more than {MAX_ANSWER_BYTES} bytes from {url}")
            return body
