"""Firebase Cloud Messaging (HTTP v1) push provider, on pyfcm 2.x with a service account.

Options (secrets already resolved):

``service_account_file``
    Path to the Google service-account JSON key. Either this or ``service_account_json``.
``service_account_json``
    The service-account JSON itself (text), for credentials delivered as a secret value.
``project_id``
    The Firebase project; defaults to the ``project_id`` of the service account.
``endpoint_base``
    Optional base URL of the messages API, default ``https://fcm.googleapis.com/v1/projects``
    (the tests point it at a local fake). The OAuth token endpoint is the service account's
    own ``token_uri``.
``timeout_seconds``
    Connect and read timeout of each HTTP call, token grant included (default 10).
``max_concurrency``
    How many sends may be in flight at once (default 64). pyfcm is synchronous, so every
    send runs on a thread of a pool of this size owned by the provider instance.

A send posts title, body and data, with ``android.ttl`` from the message's
``expires_at``, ``android.priority`` high on the transactional lane, normal on the
promotional one, and ``android.collapse_key`` set to the notification id. FCM data values must
be strings: a string value goes as it is, any other value as its JSON text (``true``,
``{"a":1}``, ``3``).

Identity: FCM has no idempotency key. A resend after "acceptance unknown" is a new FCM message;
the collapse key makes copies still waiting at FCM (device offline) arrive as one, but a copy
already shown is shown again. The result's provider message id is FCM's message name
(``projects/<project>/messages/<id>``).

pyfcm is used for the payload, the OAuth grant and the request, with four adjustments in a
per-instance subclass (each explained where it is made): the endpoint base, one attempt per
send (no sleeping on Retry-After inside a worker thread, no urllib3 retries), the FCM error
code and Retry-After kept on the exception, and one access token shared by all threads.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account
from pyfcm import FCMNotification
from pyfcm.errors import FCMError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

from providers.error_rules import (
    ACCOUNT_REFUSED,
    BY_STATUS,
    INVALID_TOKEN,
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
    Message,
    PermanentError,
    Provider,
    ProviderAccountError,
    ProviderError,
    ProviderUnavailableError,
    PushMessage,
    PushPlatform,
    SendResult,
    TransientError,
    parse_retry_after,
)
from providers.options import ProviderOptions, option, send_rate
from providers.sdk_threads import SdkThreads

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_ENDPOINT_BASE = "https://fcm.googleapis.com/v1/projects"

# What FCM's answers mean for us, one row per vendor answer.
# Error codes: https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
# Answer format and HTTP statuses: https://firebase.google.com/docs/cloud-messaging/send/v1-api
# Rows keyed by the FCM ``errorCode`` (``details[].errorCode``); an INVALID_ARGUMENT whose field
# violation names ``message.token`` gets its own row. Answers without an FCM error code fall
# back to their HTTP status ("http 404"), then to the status class ("http 4xx"/"http 5xx").
# pyfcm raises, by status: 400 InvalidDataError, 401 AuthenticationError, 403
# FCMSenderIdMismatchError, 404 FCMNotRegisteredError, anything else FCMServerError.
FCM_ERRORS: Mapping[str, ErrorRule] = {
    "UNREGISTERED": INVALID_TOKEN,
    "INVALID_ARGUMENT:message.token": INVALID_TOKEN,
    "INVALID_ARGUMENT": PERMANENT,
    "SENDER_ID_MISMATCH": PERMANENT,
    "THIRD_PARTY_AUTH_ERROR": ACCOUNT_REFUSED,  # our APNs credentials in FCM
    "QUOTA_EXCEEDED": THROTTLED,
    "UNAVAILABLE": UNAVAILABLE,
    "INTERNAL": UNAVAILABLE,
    "UNSPECIFIED_ERROR": ErrorRule(TransientError),
    "http 400": PERMANENT,
    "http 401": ACCOUNT_REFUSED,
    "http 403": ACCOUNT_REFUSED,
    "http 404": INVALID_TOKEN,
    **BY_STATUS,
}

_TOKEN_FIELD = "message.token"  # noqa: S105 - the name of FCM's device-token field


class FcmAnswerError(FCMError):
    """An error answer from FCM with the details pyfcm's own exceptions drop (it keeps only
    the HTTP status class, and for 400 the raw text): status, FCM error code, the field
    violations and Retry-After."""

    def __init__(
        self,
        status: int,
        error_code: str | None,
        fields: tuple[str, ...],
        retry_after: float | None,
    ) -> None:
        super().__init__(f"FCM answered {status} {error_code or ''}".strip())
        self.status = status
        self.error_code = error_code
        self.fields = fields
        self.retry_after = retry_after

    @property
    def table_keys(self) -> tuple[str, ...]:
        """The keys of :data:`FCM_ERRORS` this answer may have, most specific first."""
        keys = [
            self.error_code or "",
            f"http {self.status}",
            status_key(self.status),
        ]
        if self.error_code == "INVALID_ARGUMENT" and _TOKEN_FIELD in self.fields:
            keys.insert(0, f"INVALID_ARGUMENT:{_TOKEN_FIELD}")
        return tuple(keys)


@dataclass(frozen=True, slots=True)
class _Answer:
    """The parts of an FCM error body we read."""

    error_code: str | None
    fields: tuple[str, ...]


def read_error_answer(response: requests.Response) -> _Answer:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return _Answer(None, ())
    code: str | None = None
    fields: list[str] = []
    for detail in error.get("details", []) if isinstance(error, dict) else []:
        code = code or detail.get("errorCode")
        fields += [v.get("field", "") for v in detail.get("fieldViolations", [])]
    return _Answer(code, tuple(fields))


class FcmClient(FCMNotification):
    """pyfcm's client with the adjustments this service needs. A subclass is made per provider
    instance because pyfcm reads the endpoint from the class attribute ``FCM_END_POINT_BASE``."""

    token_request: Any = None  # set by FcmProvider: google-auth request with our timeout

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token_lock = threading.Lock()

    def send_request(self, payload: Any = None, timeout: Any = None) -> requests.Response:
        # pyfcm's own send_request sleeps Retry-After seconds in the calling thread and retries
        # without bound, and retries without bound on ACCESS_TOKEN_EXPIRED: here one attempt,
        # plus one retry with a fresh token; Retry-After goes back to the delivery engine.
        response = self.requests_session.post(self.fcm_end_point, data=payload, timeout=timeout)
        if self._is_access_token_expired(response):
            self.thread_local.token_expiry = 0
            response = self.requests_session.post(self.fcm_end_point, data=payload, timeout=timeout)
        answer: requests.Response = response
        return answer

    def parse_response(self, response: requests.Response) -> Any:
        try:
            return super().parse_response(response)
        except FCMError as e:
            # pyfcm hides the FCM error code and Retry-After: keep them for the error table.
            answer = read_error_answer(response)
            raise FcmAnswerError(
                response.status_code,
                answer.error_code,
                answer.fields,
                parse_retry_after(response.headers.get("Retry-After")),
            ) from e

    def _get_access_token(self) -> str:
        # pyfcm refreshes the credentials once per thread (64 grants for 64 threads) and wraps
        # google-auth's errors in InvalidDataError: one shared token, google-auth errors kept.
        with self._token_lock:
            if not self.credentials.valid:
                self.credentials.refresh(self.token_request)
            token: str = self.credentials.token
            return token


class FcmOptions(ProviderOptions):
    """The FCM adapter's options (the list in the module docstring)."""

    rate_limit: str | None = send_rate("10000/second", "FCM's default 600,000/minute by default")
    service_account_file: str | None = option(None, help="path to the service-account JSON key")
    service_account_json: str | None = option(
        None, secret=True, help="the service-account JSON itself"
    )
    project_id: str | None = option(None, help="the Firebase project (default: the account's)")
    endpoint_base: str | None = option(None, help="base URL of the messages API")
    timeout_seconds: float = option(10, gt=0, help="connect and read timeout, grant included")
    max_concurrency: int = option(64, ge=1, help="sends in flight at once (threads)")


def load_service_account(config: FcmOptions) -> dict[str, Any]:
    if config.service_account_json:
        text = config.service_account_json
    elif config.service_account_file:
        try:
            with open(config.service_account_file, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigurationError(f"cannot read service_account_file: {e.strerror}") from e
    else:
        raise ConfigurationError("needs service_account_file or service_account_json")
    try:
        info = json.loads(text)
    except ValueError as e:
        raise ConfigurationError("the service account is not valid JSON") from e
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigurationError("the service account JSON is not of type service_account")
    return info


def android_ttl(expires_at: datetime | None, now: datetime) -> str | None:
    if expires_at is None:
        return None
    seconds = math.ceil((expires_at - now).total_seconds())
    if seconds <= 0:
        raise PermanentError("message expired before it was sent", code="expired")
    return f"{seconds}s"


class FcmProvider(Provider):
    kind: ClassVar[str] = "fcm"
    channel: ClassVar[Channel] = Channel.PUSH
    options_schema: ClassVar[type[ProviderOptions]] = FcmOptions
    config: FcmOptions

    def _configure(self) -> None:
        self.timeout, self.max_concurrency = (
            self.config.timeout_seconds,
            self.config.max_concurrency,
        )
        try:
            info = load_service_account(self.config)
            credentials = service_account.Credentials.from_service_account_info(
                info, scopes=[FCM_SCOPE]
            )
        except ValueError as e:  # google-auth: missing client_email, token_uri or a bad key
            raise ConfigurationError("bad service account") from e
        self.project_id = str(self.config.project_id or info.get("project_id") or "")
        if not self.project_id:
            raise ConfigurationError("needs a project_id")
        self._adapter = HTTPAdapter(
            max_retries=0, pool_connections=2, pool_maxsize=self.max_concurrency
        )
        self._client = self._build_client(credentials, self.config.endpoint_base)
        self._threads = SdkThreads(self.max_concurrency, f"fcm-{self.name}")

    def _build_client(self, credentials: Any, endpoint_base: str | None) -> FcmClient:
        base = (endpoint_base or DEFAULT_ENDPOINT_BASE).rstrip("/")
        # pyfcm prefers the service account's project over an explicit one: pin the endpoint.
        client_class = type(
            "FcmClientForInstance",
            (FcmClient,),
            {
                "FCM_END_POINT_BASE": base,
                "fcm_end_point": f"{base}/{self.project_id}/messages:send",
            },
        )
        token_session = requests.Session()
        token_session.mount("http://", self._adapter)
        token_session.mount("https://", self._adapter)
        client: FcmClient = client_class(
            credentials=credentials, project_id=self.project_id, adapter=self._adapter
        )
        client.token_request = partial(
            google.auth.transport.requests.Request(token_session), timeout=self.timeout
        )
        return client

    def serves(self, message: Message) -> bool:
        return isinstance(message, PushMessage) and message.platform == PushPlatform.FCM

    async def _send(self, message: Message) -> SendResult:
        message = self.narrow(message, PushMessage)
        notify = partial(self._client.notify, **self._notify_arguments(message))
        try:
            answer = await self._threads.run(notify)
        except FcmAnswerError as e:
            raise answer_error(e) from e
        except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as e:
            raise transport_error(e) from e
        return SendResult(provider_message_id=str(answer.get("name", "")), response_code="200")

    def _notify_arguments(self, message: PushMessage) -> dict[str, Any]:
        android: dict[str, Any] = {
            "priority": "high" if message.lane.category == Category.TRANSACTIONAL else "normal",
            # copies of one notification still waiting at FCM collapse into one
            "collapse_key": message.notification_id,
        }
        ttl = android_ttl(message.expires_at, datetime.now(UTC))
        if ttl is not None:
            android["ttl"] = ttl
        return {
            "fcm_token": message.to,
            "notification_title": message.title,
            "notification_body": message.body,
            "data_payload": data_payload(message.data) or None,
            "android_config": android,
            "timeout": (self.timeout, self.timeout),
        }

    async def check(self, connect: bool = False) -> str:
        description = f"FCM project {self.project_id} via {self._client.fcm_end_point}"
        if not connect:
            return description
        try:
            await self._threads.run(self._client._get_access_token)
        except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as e:
            raise transport_error(e) from e
        return f"{description}: OAuth access token obtained"

    async def close(self) -> None:
        await self._threads.close(drop_waiting=True)
        self._adapter.close()


def data_payload(data: Mapping[str, Any]) -> dict[str, str]:
    """FCM data values must be strings: strings go as they are, anything else as its JSON
    (``true``, ``{"a": 1}``), never as Python's ``str()`` of it (``True``, ``{'a': 1}``)."""
    return {
        str(key): value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for key, value in data.items()
    }


def answer_error(e: FcmAnswerError) -> ProviderError:
    """FCM answered with an error: walk the table. Messages carry no token nor content."""
    text = f"FCM refused the message: HTTP {e.status} {e.error_code or ''}".strip()
    return lookup(FCM_ERRORS, *e.table_keys).build(text, e.error_code or e.status, e.retry_after)


def transport_error(e: Exception) -> ProviderError:
    """No answer from FCM. Before the message left (token grant failed, connection refused,
    connect timeout) another provider may be tried; after it left (read timeout, connection
    dropped) it may have been accepted."""
    if isinstance(e, google.auth.exceptions.RefreshError) and not e.retryable:
        return ProviderAccountError("FCM OAuth token grant refused", code="oauth")
    if isinstance(e, google.auth.exceptions.GoogleAuthError):
        return ProviderUnavailableError("FCM OAuth token endpoint unreachable", code="oauth")
    if isinstance(e, requests.ConnectTimeout) or _connection_refused(e):
        return ProviderUnavailableError("FCM connection failed", code="connect")
    if isinstance(e, requests.Timeout):
        return ProviderUnavailableError(
            "FCM answer timed out", code="timeout", accepted_unknown=True
        )
    return ProviderUnavailableError("FCM connection lost", code="connection", accepted_unknown=True)


def _connection_refused(e: Exception) -> bool:
    cause = e.args[0] if e.args else None
    return isinstance(e, requests.ConnectionError) and (
        isinstance(cause, NewConnectionError)
        or (isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError))
    )
