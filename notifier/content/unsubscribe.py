"""Unsubscribe links: signed tokens (RFC 8058 one-click) and where a promotional email carries them.

An unsubscribe token is the channel, the normalised address and the sending service (an
unsubscribe from one service's mail is not one from another's), encrypted and authenticated
with Fernet under a key derived from ``NOTIFIER_SECRET_KEY`` for this purpose only. It cannot be
forged (HMAC-SHA256), does not show the address, and cannot be enumerated (a random IV makes
every token different). It does not expire: an unsubscribe link must work for as long as the
email sits in an inbox. Intake (a single promotional email) and campaign fan-out both add the
link; what opting out does is :mod:`notifier.campaigns.optout`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifier.config import Settings
from notifier.rendering import Rendered
from notifier.security import Sealer
from notifier.services.models import DEFAULT_SERVICE_ID
from providers.interface import Channel


def preview_unsubscribe_url(settings: Settings) -> str:
    """What a template preview shows for ``{{ unsubscribe_url }}``: clearly a placeholder (a
    real link is signed per recipient when a run fans out, and opens nothing here)."""
    return f"{settings.public_url.rstrip('/')}/u/preview-unsubscribe-link"


class InvalidToken(Exception):
    """The token was not made by us (or not with this secret)."""


@dataclass(frozen=True)
class Subscriber:
    channel: Channel
    recipient: str
    service_id: str = DEFAULT_SERVICE_ID  # tokens from before services: the default service's


class UnsubscribeTokens:
    def __init__(self, secret_key: str, public_url: str) -> None:
        self._sealer = Sealer(secret_key, purpose="unsubscribe")
        self._base = public_url.rstrip("/")

    def token(self, channel: Channel, recipient: str, service_id: str | None) -> str:
        return self._sealer.seal(
            {"c": channel.value, "r": recipient, "s": service_id or DEFAULT_SERVICE_ID}
        )

    def url(self, channel: Channel, recipient: str, service_id: str | None) -> str:
        return f"{self._base}/u/{self.token(channel, recipient, service_id)}"

    def read(self, token: str) -> Subscriber:
        if not token or len(token) > 2048:
            raise InvalidToken
        try:
            value = self._sealer.unseal(token)
            service = str(value.get("s") or DEFAULT_SERVICE_ID)
            return Subscriber(Channel(value["c"]), str(value["r"]), service)
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidToken from e


def unsubscribe_link(rendered: Rendered, url: str) -> None:
    """Put the signed unsubscribe link in a promotional email (as shown and as delivered)."""
    add_unsubscribe_link(rendered.content, url)
    add_unsubscribe_link(rendered.redacted, url)


def add_unsubscribe_link(content: dict[str, Any], url: str) -> None:
    """``{{ unsubscribe_url }}`` in the template, else a footer; the URL also travels in
    ``content["unsubscribe_url"]`` for the RFC 8058 headers."""
    content["unsubscribe_url"] = url
    if url not in content["body"]:
        content["body"] = f"{content['body'].rstrip()}\n\nUnsubscribe: {url}\n"
    if content.get("html") and url not in content["html"]:
        content["html"] = f'{content["html"]}\n<p><a href="{url}">Unsubscribe</a></p>'
