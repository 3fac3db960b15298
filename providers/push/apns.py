"""Apple Push Notification service provider, on aioapns 4.0 with token (.p8) authentication.

Options (secrets already resolved):

``key_file``
    Path to the APNs signing key (``AuthKey_XXXXXXXXXX.p8``). Either this or ``key``.
``key``
    The signing key itself, PEM text (an EC P-256 private key).
``key_id``
    The key's 10-character Key ID (the ``kid`` of the provider token).
``team_id``
    The Apple developer Team ID (the ``iss`` of the provider token).
``topic``
    The app's bundle id, sent as ``apns-topic``.
``use_sandbox``
    ``true`` for the development environment (``api.development.push.apple.com``), default
    false (``api.push.apple.com``).
``host`` / ``port``
    Optional server address overriding the environment's (the tests point it at a local fake).
``ca_file``
    Optional CA bundle to verify the server with (a private CA in tests); default: the
    system's trust store.
``timeout_seconds``
    Deadline of one send, connecting included (default 10).
``max_connections``
    HTTP/2 connections to keep open (default 1): one connection carries many concurrent
    sends, as Apple recommends; more only help beyond a few thousand sends per second.

A send posts ``{"aps": {"alert": {"title", "body"}}, <data keys>}`` with ``apns-push-type:
alert``, ``apns-priority`` 10 on the transactional lane and 5 on the promotional one,
``apns-expiration`` from the message's ``expires_at``, the notification id as ``apns-collapse-id``
(a retried send after an unknown outcome then shows once on the device) and as ``apns-id`` when
it is a UUID (else a UUID derived from it). The result's provider message id is the apns-id.

aioapns builds its connection pool on the running event loop, so the client is created on first
use (and again if the provider is used from another loop).
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from aioapns import APNs
from aioapns.common import NotificationRequest, NotificationResult, PushType
from aioapns.connection import APNsBaseClientProtocol
from aioapns.exceptions import ConnectionClosed
from aioapns.exceptions import ConnectionError as ApnsConnectionError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.exceptions import FlowControlError, NoAvailableStreamIDError

from providers.error_rules import (
    ACCOUNT_REFUSED,
    INVALID_TOKEN,
    PERMANENT,
    THROTTLED,
    UNAVAILABLE,
    ErrorRule,
    lookup,
)
from providers.interface import (
    Category,
    Channel,
    ConfigurationError,
    Message,
    PermanentError,
    Provider,
    ProviderError,
    ProviderUnavailableError,
    PushMessage,
    PushPlatform,
    SendResult,
)
from providers.options import ProviderOptions, option

# What APNs answers mean for us, one row per vendor answer, keyed (HTTP status, reason); a
# reason without its own row falls back to (status, None), then to ("4xx"/"5xx", None).
# https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns
APNS_ERRORS: Mapping[tuple[str, str | None], ErrorRule] = {
    ("410", "Unregistered"): INVALID_TOKEN,
    ("410", "ExpiredToken"): INVALID_TOKEN,
    ("410", None): INVALID_TOKEN,
    ("400", "BadDeviceToken"): INVALID_TOKEN,
    ("400", "DeviceTokenNotForTopic"): INVALID_TOKEN,
    ("429", "TooManyRequests"): THROTTLED,
    ("429", None): THROTTLED,
    ("500", None): UNAVAILABLE,
    ("503", None): UNAVAILABLE,
    # our key, certificate or topic, not the message: fail over, open the breaker, alert
    ("403", "InvalidProviderToken"): ACCOUNT_REFUSED,
    ("403", "ExpiredProviderToken"): ACCOUNT_REFUSED,  # often this machine's clock
    ("403", None): ACCOUNT_REFUSED,  # BadCertificate, Forbidden, MissingProviderToken
    ("400", "BadTopic"): ACCOUNT_REFUSED,
    ("400", "TopicDisallowed"): ACCOUNT_REFUSED,
    ("4xx", None): PERMANENT,
    ("5xx", None): UNAVAILABLE,
}

_COLLAPSE_ID_LIMIT = 64  # bytes
_APNS_ID_NAMESPACE = uuid.UUID("6f0d6a53-9c52-4a0e-9f0a-4bb4c0a0a7e1")


def answer_keys(status: str, reason: str | None) -> tuple[tuple[str, str | None], ...]:
    """The keys of :data:`APNS_ERRORS` an answer may have, most specific first; a status that
    is not 5xx (not an HTTP error status at all, even) is a permanent 4xx: never retried
    blindly."""
    status_class = "5xx" if status.startswith("5") else "4xx"
    return ((status, reason), (status, None), (status_class, None))


def answer_error(result: NotificationResult) -> ProviderError:
    """APNs answered with an error: walk the table. Messages carry no token nor content."""
    rule = lookup(APNS_ERRORS, *answer_keys(result.status, result.description))
    text = f"APNs refused the notification: {result.status} {result.description or ''}".strip()
    code = f"{result.status} {result.description}" if result.description else result.status
    return rule.build(text, code)


class ApnsOptions(ProviderOptions):
    """The APNs adapter's options (the list in the module docstring). No default send rate:
    Apple publishes none, a 429 is throttling."""

    key_file: str | None = option(None, help="path to the signing key (AuthKey_XXXXXXXXXX.p8)")
    key: str | None = option(None, secret=True, help="the signing key itself, PEM text")
    key_id: str = option(help="the key's 10-character Key ID")
    team_id: str = option(help="the Apple developer Team ID")
    topic: str = option(help="the app's bundle id (apns-topic)")
    use_sandbox: bool = option(False, help="the development environment")
    host: str | None = option(None, help="server host overriding the environment's")
    port: int = option(443, ge=1, le=65535, help="server port")
    ca_file: str | None = option(None, help="CA bundle to verify the server with")
    timeout_seconds: float = option(10, gt=0, help="deadline of one send, connecting included")
    max_connections: int = option(1, ge=1, help="HTTP/2 connections to keep open")


def load_signing_key(config: ApnsOptions) -> str:
    if config.key:
        pem = config.key
    elif config.key_file:
        try:
            with open(config.key_file, encoding="ascii") as f:
                pem = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigurationError("cannot read key_file") from e
    else:
        raise ConfigurationError("needs key_file or key")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as e:
        raise ConfigurationError("the signing key is not a PEM private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigurationError("the signing key is not an EC P-256 (ES256) key")
    return pem


def apns_id_for(notification_id: str) -> str:
    try:
        return str(uuid.UUID(notification_id))
    except ValueError:
        return str(uuid.uuid5(_APNS_ID_NAMESPACE, notification_id))


def time_to_live(expires_at: datetime | None) -> int | None:
    """Seconds until ``expires_at``; aioapns turns it into ``apns-expiration`` (epoch)."""
    if expires_at is None:
        return None
    seconds = math.floor(expires_at.timestamp() - time.time())
    if seconds <= 0:
        raise PermanentError("message expired before it was sent", code="expired")
    return seconds


def alert_payload(message: PushMessage) -> dict[str, Any]:
    alert = (
        {"title": message.title, "body": message.body} if message.title else {"body": message.body}
    )
    return {**message.data, "aps": {"alert": alert}}


class ApnsProvider(Provider):
    kind: ClassVar[str] = "apns"
    channel: ClassVar[Channel] = Channel.PUSH
    options_schema: ClassVar[type[ProviderOptions]] = ApnsOptions
    config: ApnsOptions

    def _configure(self) -> None:
        config = self.config
        self._key = load_signing_key(config)
        self.key_id, self.team_id, self.topic = config.key_id, config.team_id, config.topic
        self.use_sandbox, self.host, self.port = config.use_sandbox, config.host, config.port
        self.timeout, self.max_connections = config.timeout_seconds, config.max_connections
        self.ca_file = config.ca_file
        self._client: APNs | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: dict[str, asyncio.Task[NotificationResult]] = {}

    # ------------------------------------------------------------------ client

    def _client_on_this_loop(self) -> APNs:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client, self._loop = self._build_client(), loop
        return self._client

    def _build_client(self) -> APNs:
        client = APNs(
            key=self._key,
            key_id=self.key_id,
            team_id=self.team_id,
            topic=self.topic,
            max_connections=self.max_connections,
            max_connection_attempts=1,
            use_sandbox=self.use_sandbox,
            ssl_context=self._ssl_context(),
        )
        if self.host:
            # aioapns reads host and port from class attributes of the protocol: a subclass per
            # instance, so two providers can talk to different servers.
            base = client.pool.protocol_class
            client.pool.protocol_class = type(
                "ApnsProtocolForInstance",
                (base,),
                {"APNS_SERVER": self.host, "APNS_PORT": self.port},
            )
        return client

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        context.set_alpn_protocols(["h2"])
        return context

    @property
    def server(self) -> str:
        if self.host:
            return f"{self.host}:{self.port}"
        name = "api.development.push.apple.com" if self.use_sandbox else "api.push.apple.com"
        return f"{name}:443"

    async def _connection(self, client: APNs) -> APNsBaseClientProtocol:
        try:
            return await client.pool.acquire()
        except ApnsConnectionError as e:
            raise ProviderUnavailableError("APNs connection failed", code="connect") from e

    # ------------------------------------------------------------------ send

    def serves(self, message: Message) -> bool:
        return isinstance(message, PushMessage) and message.platform == PushPlatform.APNS

    async def _send(self, message: Message) -> SendResult:
        message = self.narrow(message, PushMessage)
        request = self._request(message)
        client = self._client_on_this_loop()
        # Not client.send_notification: the pool's loop sleeps a second and retries a refused
        # connection, and reports a connection lost after sending the same way as a refused
        # one (MaxAttemptsExceeded). The delivery engine must tell them apart, so the adapter
        # acquires the connection itself and sends on it.
        sent = False
        try:
            async with asyncio.timeout(self.timeout):
                connection = await self._connection(client)
                sent = True
                result = await self._send_on(connection, request)
        except TimeoutError as e:
            raise ProviderUnavailableError(
                "APNs answer timed out" if sent else "APNs connection timed out",
                code="timeout",
                accepted_unknown=sent,
            ) from e
        except ConnectionClosed as e:
            raise ProviderUnavailableError(
                "APNs connection lost", code="connection", accepted_unknown=True
            ) from e
        if not result.is_successful:
            raise answer_error(result)
        return SendResult(provider_message_id=result.notification_id, response_code=result.status)

    def _request(self, message: PushMessage) -> NotificationRequest:
        apns_id = apns_id_for(message.notification_id)
        if apns_id in self._in_flight:  # an earlier attempt still waits for its answer
            apns_id = str(uuid.uuid4())
        collapse_id: str | None = message.notification_id
        if len(message.notification_id.encode()) > _COLLAPSE_ID_LIMIT:
            collapse_id = None
        return NotificationRequest(
            device_token=message.to,
            message=alert_payload(message),
            notification_id=apns_id,
            time_to_live=time_to_live(message.expires_at),
            priority=10 if message.lane.category == Category.TRANSACTIONAL else 5,
            collapse_key=collapse_id,
            push_type=PushType.ALERT,
        )

    async def _send_on(
        self, connection: APNsBaseClientProtocol, request: NotificationRequest
    ) -> NotificationResult:
        try:
            return await asyncio.shield(self._start(connection, request))
        except (NoAvailableStreamIDError, FlowControlError) as e:
            # the request never left whole: drop the connection, the pool opens a new one
            connection.close()
            raise ProviderUnavailableError("APNs connection exhausted", code="connection") from e

    def _start(
        self, connection: APNsBaseClientProtocol, request: NotificationRequest
    ) -> asyncio.Task[NotificationResult]:
        """Send in a task of its own, shielded from our timeout: aioapns fails on an answer
        whose waiting future was cancelled (InvalidStateError in data_received), which would
        kill the connection and every send sharing it. A late answer lands in the task."""
        task = asyncio.ensure_future(connection.send_notification(request))
        self._in_flight[request.notification_id] = task
        task.add_done_callback(lambda t: self._finished(request.notification_id, t))
        return task

    def _finished(self, apns_id: str, task: asyncio.Task[NotificationResult]) -> None:
        if self._in_flight.get(apns_id) is task:
            del self._in_flight[apns_id]
        if not task.cancelled():
            task.exception()  # retrieved: a late failure is already reported as a timeout

    # ------------------------------------------------------------------ lifecycle

    async def check(self, connect: bool = False) -> str:
        description = f"APNs {self.server}, topic {self.topic}, key {self.key_id}"
        if not connect:
            return description
        client = self._client_on_this_loop()
        try:
            async with asyncio.timeout(self.timeout):
                await self._connection(client)
        except TimeoutError as e:
            raise ProviderUnavailableError("APNs connection timed out", code="timeout") from e
        return f"{description}: HTTP/2 connection open (the provider token is checked on send)"

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None or self._loop is not asyncio.get_running_loop():
            return
        client.pool.close()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()), timeout=1.0)
        for _ in range(100):  # let connection_lost run, so no transport outlives the provider
            if not client.pool.connections:
                break
            await asyncio.sleep(0.01)
