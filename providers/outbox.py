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

The files are written off the event loop, and the sends that finish in the same loop iteration
(a task's group, all answered after the same latency) write theirs in one trip to a thread
(:class:`_BatchWriter`): one thread hop per iteration instead of one per send, which was a
sixth of the outbox's CPU in bench.e2e (bench/README.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
from collections.abc import Callable
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
        self._writer = _BatchWriter(self._write)

    async def _send(self, message: Message) -> SendResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        self._simulate(message.to)
        message_id = f"outbox-{_message_ids.getrandbits(128):032x}"
        record = {"provider_message_id": message_id, **_jsonable(message)}
        if isinstance(message, EmailMessage):
            record["wire_headers"] = dict(wire_headers(message))
        await self._writer.write((message.notification_id, message_id, record))
        return SendResult(provider_message_id=message_id, response_code="250")

    def _write(self, notification_id: str, message_id: str, record: dict[str, Any]) -> None:
        directory = os.fspath(self.path)
        partial = f"{directory}/{notification_id}.{message_id}.part"
        # one line, by the C encoder (indented JSON takes the pure-Python one: about a fifth
        # of a worker's CPU in bench.e2e); `python -m json.tool <file>` shows it indented
        data = json.dumps(record, sort_keys=True).encode()
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:  # the first write, or the folder was removed
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        try:  # a hard link never replaces: the first send keeps the plain name
            os.link(partial, f"{directory}/{notification_id}.json")
        except FileExistsError:
            os.link(partial, f"{directory}/{notification_id}.{message_id}.json")
        os.unlink(partial)

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


# provider message ids need to be unique, not secret: a per-process generator seeded from the
# system's randomness (again in a forked child), without a system call per id as uuid4 makes
_message_ids = random.Random(os.urandom(32))  # noqa: S311 - unique, not secret (above)
os.register_at_fork(after_in_child=lambda: _message_ids.seed(os.urandom(32)))

_Item = tuple[str, str, dict[str, Any]]  # notification id, provider message id, record


class _BatchWriter:
    """Runs ``write`` for every item handed over during one event-loop iteration in one trip to
    a thread, and answers each caller with its own item's result or exception."""

    def __init__(self, write: Callable[[str, str, dict[str, Any]], None]) -> None:
        self._write = write
        self._pending: list[tuple[_Item, asyncio.Future[None]]] = []

    async def write(self, item: _Item) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush, loop)
        self._pending.append((item, future))
        await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        done = loop.run_in_executor(None, self._write_all, [item for item, _ in batch])
        done.add_done_callback(lambda d: _answer([f for _, f in batch], d))

    def _write_all(self, items: list[_Item]) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for item in items:
            try:
                self._write(*item)
                errors.append(None)
            except Exception as e:  # that item's caller gets it, the others are written
                errors.append(e)
        return errors


def _answer(futures: list[asyncio.Future[None]], done: asyncio.Future[Any]) -> None:
    if done.cancelled() or done.exception() is not None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        results: list[BaseException | None] = [error] * len(futures)
    else:
        results = done.result()
    for future, error in zip(futures, results, strict=True):
        if future.done():  # its send was cancelled (a deadline): nobody waits for it
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


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
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
