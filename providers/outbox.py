"""The development and test provider: writes what it "sends" to disk and answers like a real one.

Every accepted message becomes one JSON file ``<outbox>/<lane>/<notification_id>.json`` (written
atomically), and the answer carries a provider message id, exactly like a real provider. A
second send of the same notification never replaces the first: it is kept beside it as
``<notification_id>.<provider message id>.json``, so the outbox shows what a recipient would
have received, duplicates included (``bench.e2e`` counts them there, from outside our tables).
It serves every channel, so the embedded default works with no credentials at all.

Simulated outcomes (so a developer can watch retries, failures and suppressions without a real
provider), chosen by the recipient's local part at the reserved domain ``simulator.notifier.dev`` or
by the Australian regulator's numbers reserved for fiction, +61 491 570 156 to 159:

=====================================  ==============================
recipient                              outcome
=====================================  ==============================
``temporary-failure@simulator.notifier.dev`` / ``+61491570156``  TransientError (5xx)
``throttled@simulator.notifier.dev``        / ``+61491570157``  ThrottledError, Retry-After 1 s
``permanent-failure@simulator.notifier.dev`` / ``+61491570158``  PermanentError
``invalid@simulator.notifier.dev``          / ``+61491570159``  InvalidRecipientError (suppressed)
=====================================  ==============================

Options: ``path`` (the outbox folder), ``latency_ms`` (an artificial provider latency, used by
the benchmarks).

An email's record also holds ``wire_headers``: every header a real email adapter would add
(Message-ID, X-Notifier-Notification-Id, the caller's headers, List-Unsubscribe and
List-Unsubscribe-Post on promotional mail), exactly as they would be sent.

The simulated temporary failure is an answer about that one recipient: like a real mailbox
that is busy, it is retried and never opens the outbox's circuit breaker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from providers.email.headers import extra_headers, message_id_for
from providers.interface import (
    Channel,
    EmailMessage,
    InvalidRecipientError,
    Message,
    PermanentError,
    Provider,
    SendResult,
    SuppressionReason,
    ThrottledError,
    TransientError,
)
from providers.options import ProviderOptions, option

_SIMULATED = {
    "temporary-failure@simulator.notifier.dev": "transient",
    "+61491570156": "transient",
    "throttled@simulator.notifier.dev": "throttled",
    "+61491570157": "throttled",
    "permanent-failure@simulator.notifier.dev": "permanent",
    "+61491570158": "permanent",
    "invalid@simulator.notifier.dev": "invalid",
    "+61491570159": "invalid",
}


def simulated_outcome(recipient: str) -> str | None:
    return _SIMULATED.get(recipient.lower())


class OutboxOptions(ProviderOptions):
    """The outbox's options (no default send rate)."""

    path: str = option(help="the outbox folder")
    latency_ms: float = option(0, ge=0, help="an artificial provider latency (benchmarks)")


class OutboxProvider(Provider):
    kind: ClassVar[str] = "outbox"
    channel: ClassVar[Channel | None] = None  # serves every channel
    options_schema: ClassVar[type[ProviderOptions]] = OutboxOptions
    config: OutboxOptions

    def _configure(self) -> None:
        self.path = Path(self.config.path) / self.lane.value
        self.latency = self.config.latency_ms / 1000.0

    async def _send(self, message: Message) -> SendResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        self._simulate(message.to)
        message_id = f"outbox-{uuid.uuid4()}"
        record = {"provider_message_id": message_id, **_jsonable(dataclasses.asdict(message))}
        if isinstance(message, EmailMessage):
            record["wire_headers"] = dict(wire_headers(message))
        await asyncio.to_thread(self._write, message.notification_id, message_id, record)
        return SendResult(provider_message_id=message_id, response_code="250")

    def _write(self, notification_id: str, message_id: str, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        partial = self.path / f"{notification_id}.{message_id}.part"
        # one line, by the C encoder (indented JSON takes the pure-Python one: about a fifth
        # of a worker's CPU in bench.e2e); `python -m json.tool <file>` shows it indented
        partial.write_text(json.dumps(record, sort_keys=True))
        try:  # a hard link never replaces: the first send keeps the plain name
            os.link(partial, self.path / f"{notification_id}.json")
        except FileExistsError:
            os.link(partial, self.path / f"{notification_id}.{message_id}.json")
        partial.unlink()

    @staticmethod
    def _simulate(recipient: str) -> None:
        outcome = simulated_outcome(recipient)
        if outcome == "transient":
            raise TransientError("simulated temporary failure", code=503)
        if outcome == "throttled":
            raise ThrottledError("simulated throttling", code=429, retry_after=1.0)
        if outcome == "permanent":
            raise PermanentError("simulated permanent failure", code=400)
        if outcome == "invalid":
            raise InvalidRecipientError(
                "simulated invalid recipient", code=404, reason=SuppressionReason.INVALID_ADDRESS
            )

    async def check(self, connect: bool = False) -> str:
        if connect:
            await asyncio.to_thread(self.path.mkdir, parents=True, exist_ok=True)
        return f"writes to {self.path}"


OUTBOX_DOMAIN = "outbox.notifier.dev"


def wire_headers(message: EmailMessage) -> list[tuple[str, str]]:
    """The headers an email adapter would add beyond To/Subject/Date, as they would be sent: a
    developer sees the Message-ID, List-Unsubscribe and the rest in the outbox, and the From of
    the sending service when it has its own sender."""
    sender = [("From", message.from_address)] if message.from_address else []
    return [
        *sender,
        ("Message-ID", message_id_for(message.notification_id, OUTBOX_DOMAIN)),
        *extra_headers(message),
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
