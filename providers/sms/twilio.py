"""SMS through Twilio's Programmable Messaging API (the ``twilio`` SDK, Messages resource).

One instance serves one lane and uses only that lane's sender: a promotional instance never
even reads the transactional sender, and construction fails if the lane has no sender of its
own, so a promotional SMS can never leave with the transactional sender.

Options (secrets already resolved):

``account_sid`` (required)
    The Twilio account SID (``AC...``); also the HTTP basic-auth user.
``auth_token`` (required)
    The account's auth token (HTTP basic-auth password). Never logged, never in error messages.
``transactional_messaging_service_sid`` / ``transactional_from``
    The sender of the ``sms.transactional`` lane: a Messaging Service SID (``MG...``) and/or a
    sender (E.164 number, short code or alphanumeric ID). At least one is required when the
    provider serves that lane; when both are set, Twilio uses ``from`` out of the service's pool.
``promotional_messaging_service_sid`` / ``promotional_from``
    The same for the ``sms.promotional`` lane.
``status_callback_url`` (optional)
    Where Twilio posts delivery receipts (see :mod:`providers.sms.twilio_webhooks`).
``base_url`` (optional)
    The API host, default ``https://api.twilio.com``; tests point it at a local fake.
``timeout_seconds`` (optional, default 10)
    Connect and read timeout of each API call.
``max_concurrency`` (optional, default 64)
    Threads (and pooled HTTP connections) running the synchronous SDK for this instance.

``send`` sets ``ValidityPeriod`` from the message's ``expires_at`` (Twilio accepts 1..36000 s;
later expiries are capped) and returns the message SID. A message already expired is refused
with :class:`PermanentError` (code ``expired``) without calling Twilio. The SDK's failures are
translated once, through :data:`ERROR_TABLE`.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from providers.error_rules import (
    ACCOUNT_REFUSED,
    ANSWER_LOST,
    CONNECT_FAILED,
    HTTP_4XX,
    HTTP_5XX,
    HTTP_429,
    INVALID_ADDRESS,
    MAYBE_SENT,
    NOT_SENT,
    PERMANENT,
    THROTTLED,
    UNAVAILABLE,
    ErrorRule,
    lookup,
    status_key,
)
from providers.interface import (
    Category,
    Channel,
    ConfigurationError,
    InvalidRecipientError,
    Lane,
    Message,
    PermanentError,
    Provider,
    ProviderAccountError,
    SendResult,
    SmsMessage,
    SuppressionReason,
    parse_retry_after,
)
from providers.options import ProviderOptions, option, send_rate
from providers.sdk_threads import SdkThreads

T = TypeVar("T")

MAX_VALIDITY_PERIOD = 36000  # seconds, Twilio's upper bound for ValidityPeriod


# Twilio's answers and what they mean for us. Error codes are documented one page per code at
# https://www.twilio.com/docs/errors/<code> (index: https://www.twilio.com/docs/api/errors);
# HTTP statuses at https://www.twilio.com/docs/usage/requests-to-twilio. Keys are Twilio error
# codes first, then HTTP status classes, then the transport failures.
ERROR_TABLE: Mapping[int | str, ErrorRule] = {
    21211: INVALID_ADDRESS,  # invalid 'To'
    21214: INVALID_ADDRESS,  # cannot be reached
    21217: INVALID_ADDRESS,  # not a valid number
    21614: INVALID_ADDRESS,  # not a mobile
    21610: ErrorRule(InvalidRecipientError, SuppressionReason.STOP),  # recipient replied STOP
    20429: THROTTLED,  # too many requests
    # our account or sender, not the message: fail over, open the breaker, alert
    20003: ACCOUNT_REFUSED,  # authentication failed
    20005: ACCOUNT_REFUSED,  # account not active
    21212: ACCOUNT_REFUSED,  # invalid 'From' number
    21606: ACCOUNT_REFUSED,  # 'From' is not a valid number of this account
    30002: ACCOUNT_REFUSED,  # account suspended
    HTTP_429: THROTTLED,
    HTTP_5XX: UNAVAILABLE,
    HTTP_4XX: PERMANENT,
    CONNECT_FAILED: NOT_SENT,
    ANSWER_LOST: MAYBE_SENT,
}


def rest_error(status: int, code: int | None, retry_after: float | None) -> Exception:
    """The typed error for an HTTP error answer of the API (without any vendor prose, which may
    quote the recipient)."""
    if code is None or code == status:  # no Twilio code in the answer: the SDK repeats the status
        text = (
            f"twilio answered HTTP {status}: https://www.twilio.com/docs/usage/requests-to-twilio"
        )
        return lookup(ERROR_TABLE, status_key(status)).build(text, status, retry_after)
    text = f"twilio answered HTTP {status}, error {code}: https://www.twilio.com/docs/errors/{code}"
    return lookup(ERROR_TABLE, code, status_key(status)).build(text, code, retry_after)


def transport_error(error: requests.RequestException) -> Exception:
    """The typed error for a failure below HTTP: refused/unreachable before anything was sent
    is safe to fail over; anything later may have reached Twilio."""
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    refused = isinstance(error, requests.ConnectTimeout) or isinstance(
        reason, NewConnectionError | ConnectTimeoutError
    )
    key = CONNECT_FAILED if refused else ANSWER_LOST
    name = type(error).__name__
    text = (
        f"twilio unreachable ({name})" if refused else f"twilio answer lost after sending ({name})"
    )
    return lookup(ERROR_TABLE, key).build(text, key.replace(" ", "_"))


def validity_period(expires_at: datetime | None, now: datetime) -> int | None:
    """Seconds Twilio may keep the message queued, from the message's expiry."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    remaining = math.floor((expires_at - now).total_seconds())
    if remaining < 1:
        raise PermanentError("message expired before it could be sent", code="expired")
    return min(remaining, MAX_VALIDITY_PERIOD)


class AnswerKeepingHttpClient(TwilioHttpClient):
    """The SDK's requests-based client, remembering the last answer's headers per thread so a
    429's Retry-After survives the SDK's exception (which drops the headers), with a connection
    pool as large as the executor."""

    def __init__(self, timeout: float, pool_size: int) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        self._answers = threading.local()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        session = self.session
        if session is None:  # pool_connections=True above makes the SDK create one
            raise RuntimeError("the Twilio SDK made no pooled session")
        session.mount("https://", adapter)
        session.mount("http://", adapter)

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self._answers.headers = {}
        response = super().request(*args, **kwargs)
        self._answers.headers = response.headers or {}
        return response

    def retry_after(self) -> float | None:
        headers = getattr(self._answers, "headers", {})
        return parse_retry_after(headers.get("Retry-After"))

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def lane_sender(lane: Lane, config: TwilioOptions) -> dict[str, str]:
    """The Messages API sender parameters of this lane, from this lane's options only."""
    if lane.category == Category.PROMOTIONAL:
        prefix = "promotional"
        service_sid, from_ = config.promotional_messaging_service_sid, config.promotional_from
    else:
        prefix = "transactional"
        service_sid, from_ = config.transactional_messaging_service_sid, config.transactional_from
    if not service_sid and not from_:
        raise ConfigurationError(
            f"serves {lane} but has neither '{prefix}_messaging_service_sid' nor '{prefix}_from'"
        )
    sender = {"messaging_service_sid": service_sid, "from_": from_}
    return {key: str(value) for key, value in sender.items() if value}


class TwilioOptions(ProviderOptions):
    """The Twilio adapter's options (the list in the module docstring)."""

    rate_limit: str | None = send_rate("100/second", "Twilio's default API concurrency by default")
    account_sid: str = option(help="the account SID (AC...), also the basic-auth user")
    auth_token: str = option(secret=True, help="the account's auth token")
    transactional_messaging_service_sid: str | None = option(
        None, help="Messaging Service SID of the sms.transactional lane"
    )
    transactional_from: str | None = option(None, help="sender of the sms.transactional lane")
    promotional_messaging_service_sid: str | None = option(
        None, help="Messaging Service SID of the sms.promotional lane"
    )
    promotional_from: str | None = option(None, help="sender of the sms.promotional lane")
    status_callback_url: str | None = option(None, help="where Twilio posts delivery receipts")
    base_url: str | None = option(None, help="the API host (default https://api.twilio.com)")
    timeout_seconds: float = option(10, gt=0, help="connect and read timeout of each call")
    max_concurrency: int = option(64, ge=1, help="threads and pooled connections")


class TwilioProvider(Provider):
    kind: ClassVar[str] = "twilio"
    channel: ClassVar[Channel] = Channel.SMS
    options_schema: ClassVar[type[ProviderOptions]] = TwilioOptions
    config: TwilioOptions

    def _configure(self) -> None:
        config = self.config
        self.account_sid = config.account_sid
        self.sender = lane_sender(self.lane, config)
        self.status_callback = config.status_callback_url
        max_concurrency = config.max_concurrency
        self._http = AnswerKeepingHttpClient(config.timeout_seconds, pool_size=max_concurrency)
        self._client = Client(self.account_sid, config.auth_token, http_client=self._http)
        if config.base_url:
            self._client.api.base_url = config.base_url.rstrip("/")
        self._threads = SdkThreads(max_concurrency, f"twilio-{self.name}")

    async def _send(self, message: Message) -> SendResult:
        message = self.narrow(message, SmsMessage)
        params = self.message_params(message, datetime.now(UTC))
        created = await self._call(self._client.messages.create, **params)
        return SendResult(provider_message_id=created.sid, response_code="201")

    def message_params(self, message: SmsMessage, now: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {"to": message.to, "body": message.body, **self.sender}
        if message.messaging_service_sid or message.sender_id:  # the service's own sender
            params.pop("messaging_service_sid", None)
            params.pop("from_", None)
            if message.messaging_service_sid:
                params["messaging_service_sid"] = message.messaging_service_sid
            else:
                params["from_"] = message.sender_id
        if self.status_callback:
            params["status_callback"] = self.status_callback
        period = validity_period(message.expires_at, now)
        if period is not None:
            params["validity_period"] = period
        return params

    async def check(self, connect: bool = False) -> str:
        sender = self.sender.get("messaging_service_sid") or self.sender["from_"]
        description = f"twilio account {self.account_sid}, {self.lane} sender {sender}"
        if not connect:
            return description
        account = await self._call(self._client.api.v2010.accounts(self.account_sid).fetch)
        if account.status != "active":
            raise ProviderAccountError(f"twilio account is {account.status}", code=account.status)
        return f"{description}: authenticated, account active"

    async def close(self) -> None:
        await self._threads.close()
        self._http.close()

    async def _call(self, function: Callable[..., T], **kwargs: Any) -> T:
        return await self._threads.run(functools.partial(self._translated, function, kwargs))

    def _translated(self, function: Callable[..., T], kwargs: dict[str, Any]) -> T:
        """Runs on an executor thread: the SDK call, its failures translated to ours."""
        try:
            return function(**kwargs)
        except (TwilioRestException, TwilioServiceException) as e:
            raise rest_error(e.status, _int_or_none(e.code), self._http.retry_after()) from e
        except requests.RequestException as e:
            raise transport_error(e) from e
        except json.JSONDecodeError as e:  # an answer that is not the JSON Twilio promises
            lost = lookup(ERROR_TABLE, ANSWER_LOST)
            raise lost.build("twilio answer unreadable", "bad_answer") from e


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
