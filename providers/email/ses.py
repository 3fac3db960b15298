"""Amazon SES email provider (boto3 ``sesv2`` ``SendEmail``).

Options (secrets already resolved):

======================  ======================================================================
``region``              AWS region of the SES account, e.g. ``eu-west-1`` (required)
``from_address``        ``From:`` address, a verified SES identity (required)
``from_name``           display name of ``From:`` (optional)
``access_key_id``       AWS access key id (optional; with ``secret_access_key``)
``secret_access_key``   AWS secret access key (optional; without both keys boto3's default
                        credential chain applies: environment, profile, IAM role)
``endpoint_url``        another SES endpoint (optional; tests point it at a local server)
``configuration_set``   SES configuration set to send through, e.g. for event publishing
                        (optional)
``timeout_seconds``     connect and read timeout of each call (default 10)
``max_concurrency``     calls in flight at once: threads and pooled HTTP connections (default 64)
======================  ======================================================================

boto3 is synchronous: calls run on a thread pool owned by the instance (``max_concurrency``
threads, :mod:`providers.sdk_threads`), on one client created once, so many sends wait on SES
concurrently without blocking the worker's event loop. botocore's own retries are off: it would
retry a read timeout, and a request SES may have accepted must not be sent twice; the delivery
engine retries with backoff instead.

Each message carries ``EmailTags`` ``notification_id=<id>`` (so SES events name it), the header
``X-Notifier-Notification-Id`` and, on the promotional lane with an ``unsubscribe_url``, RFC 8058
``List-Unsubscribe`` / ``List-Unsubscribe-Post`` headers. The result's provider message id is SES's
``MessageId``, which SES events carry as ``mail.messageId``.

Failures map through :data:`ERROR_TABLE` (SES error code to typed error); codes not listed fall
back on the HTTP status: 429 throttled, 5xx transient, other 4xx permanent. Connection failures
before the request was sent are transient with ``accepted_unknown=False``; a read timeout or a
connection closed before the answer (the request may have been processed) are transient with
``accepted_unknown=True``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from email.headerregistry import Address
from typing import Any, ClassVar, Self

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from pydantic import model_validator

from providers.email.headers import extra_headers
from providers.error_rules import (
    ACCOUNT_REFUSED,
    HTTP_4XX,
    HTTP_5XX,
    HTTP_429,
    PERMANENT,
    UNAVAILABLE,
    ErrorRule,
    lookup,
    status_key,
)
from providers.interface import (
    Channel,
    EmailMessage,
    Message,
    PermanentError,
    Provider,
    ProviderAccountError,
    ProviderError,
    ProviderUnavailableError,
    SendResult,
    ThrottledError,
    TransientError,
    parse_retry_after,
)
from providers.options import ProviderOptions, option, send_rate
from providers.sdk_threads import SdkThreads


class SesOptions(ProviderOptions):
    """The SES adapter's options (the table in the module docstring)."""

    rate_limit: str | None = send_rate("14/second", "SES's starting production quota by default")
    region: str = option(help="AWS region of the SES account")
    from_address: str = option(help="From: address, a verified SES identity")
    from_name: str | None = option(None, help="display name of From:")
    access_key_id: str | None = option(None, help="AWS access key id (with secret_access_key)")
    secret_access_key: str | None = option(None, secret=True, help="AWS secret access key")
    endpoint_url: str | None = option(None, help="another SES endpoint")
    configuration_set: str | None = option(None, help="configuration set to send through")
    timeout_seconds: float = option(10, gt=0, help="connect and read timeout of each call")
    max_concurrency: int = option(64, ge=1, help="calls in flight at once")

    @model_validator(mode="after")
    def _both_keys_or_neither(self) -> Self:
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ValueError(
                "give both access_key_id and secret_access_key, "
                "or neither for the default credential chain"
            )
        return self


# How long to wait after throttling when SES does not say (it usually does not): SES limits are
# per second.
DEFAULT_THROTTLE_SECONDS = 1.0
THROTTLED_A_SECOND = ErrorRule(ThrottledError, retry_after=DEFAULT_THROTTLE_SECONDS)


# SES API v2 errors of SendEmail and the common AWS errors:
# https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html#API_SendEmail_Errors
# https://docs.aws.amazon.com/ses/latest/APIReference-V2/CommonErrors.html
# Keys are SES error codes, then the HTTP status classes for codes without a row.
ERROR_TABLE: Mapping[str, ErrorRule] = {
    "Throttling": THROTTLED_A_SECOND,
    "ThrottlingException": THROTTLED_A_SECOND,
    "TooManyRequestsException": THROTTLED_A_SECOND,
    "LimitExceededException": THROTTLED_A_SECOND,
    "InternalFailure": UNAVAILABLE,
    "InternalServerError": UNAVAILABLE,
    "ServiceUnavailable": UNAVAILABLE,
    "ServiceUnavailableException": UNAVAILABLE,
    "RequestTimeout": UNAVAILABLE,
    "MessageRejected": PERMANENT,
    "InvalidParameterValue": PERMANENT,
    "BadRequestException": PERMANENT,
    # our account, sender or credentials, not the message: fail over, open the breaker, alert
    "MailFromDomainNotVerifiedException": ACCOUNT_REFUSED,
    "AccountSuspendedException": ACCOUNT_REFUSED,
    "AccountSendingPausedException": ACCOUNT_REFUSED,
    "SendingPausedException": ACCOUNT_REFUSED,
    "NotFoundException": ACCOUNT_REFUSED,  # e.g. the configuration set does not exist
    "AccessDeniedException": ACCOUNT_REFUSED,
    "UnrecognizedClientException": ACCOUNT_REFUSED,
    "InvalidClientTokenId": ACCOUNT_REFUSED,
    "SignatureDoesNotMatch": ACCOUNT_REFUSED,
    "IncompleteSignature": ACCOUNT_REFUSED,
    "MissingAuthenticationToken": ACCOUNT_REFUSED,
    HTTP_429: THROTTLED_A_SECOND,
    HTTP_5XX: UNAVAILABLE,
    HTTP_4XX: PERMANENT,
}

# Codes whose AWS message may describe the request signature or key: never copied into ours.
_CREDENTIAL_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)

# SES message tag values: ASCII letters, digits, "_" and "-", at most 256 characters.
_TAG_FORBIDDEN = re.compile(r"[^A-Za-z0-9_-]")


# --------------------------------------------------------------------------- error mapping


def client_error(error: ClientError) -> ProviderError:
    """The typed error for an answer of SES, by :data:`ERROR_TABLE`, else by HTTP status."""
    details = error.response.get("Error", {})
    code = str(details.get("Code") or "")
    metadata = error.response.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode") or 0)
    rule = lookup(ERROR_TABLE, code, status_key(status))
    description = f"SES {code or 'error'} (HTTP {status})"
    if code not in _CREDENTIAL_CODES and details.get("Message"):
        description += f": {_one_line(str(details['Message']))}"
    said = parse_retry_after((metadata.get("HTTPHeaders") or {}).get("retry-after"))
    return rule.build(description, code or status, said or None)


def transport_error(error: BotoCoreError) -> ProviderError:
    """The typed error for a failure of botocore before or while talking to SES."""
    if isinstance(error, ReadTimeoutError):
        return ProviderUnavailableError("SES read timed out", code="timeout", accepted_unknown=True)
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        return ProviderUnavailableError(
            "SES endpoint unreachable", code="connect", accepted_unknown=False
        )
    if isinstance(error, ConnectionClosedError):
        # The request was written; SES may have processed it before the connection dropped.
        return ProviderUnavailableError(
            "SES connection closed before the answer", code="disconnected", accepted_unknown=True
        )
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return ProviderAccountError("no usable AWS credentials for SES", code="credentials")
    if isinstance(error, ParamValidationError):
        return PermanentError("SES refused the request parameters", code="invalid_request")
    return TransientError(
        f"SES call failed: {type(error).__name__}", code="botocore", accepted_unknown=True
    )


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


# --------------------------------------------------------------------------- provider


class SesProvider(Provider):
    kind: ClassVar[str] = "ses"
    channel: ClassVar[Channel] = Channel.EMAIL
    options_schema: ClassVar[type[ProviderOptions]] = SesOptions
    config: SesOptions

    def _configure(self) -> None:
        config = self.config
        self.region, self.from_address = config.region, config.from_address
        self.from_name, self.configuration_set = config.from_name, config.configuration_set
        self.endpoint_url = config.endpoint_url
        self.timeout, self.max_concurrency = config.timeout_seconds, config.max_concurrency
        self._client = self._make_client()
        self._threads = SdkThreads(self.max_concurrency, f"ses-{self.name}")

    # ---------------------------------------------------------------- interface

    async def _send(self, message: Message) -> SendResult:
        message = self.narrow(message, EmailMessage)
        response = await self._call("send_email", **self.request(message))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return SendResult(
            provider_message_id=str(response["MessageId"]),
            response_code=None if status is None else str(status),
        )

    async def check(self, connect: bool = False) -> str:
        description = f"ses {self.region} from {self.from_address}"
        if not connect:
            return description
        account = await self._call("get_account")
        if not account.get("SendingEnabled", True):
            raise ProviderAccountError(
                "SES sending is paused for this account", code="sending_paused"
            )
        quota = account.get("SendQuota", {})
        return (
            f"{description}: sending enabled, max {quota.get('MaxSendRate', '?')}/s, "
            f"{quota.get('Max24HourSend', '?')}/24h"
        )

    async def close(self) -> None:
        await self._threads.close()
        self._client.close()

    # ---------------------------------------------------------------- request

    def request(self, message: EmailMessage) -> dict[str, Any]:
        """The SendEmail parameters for ``message``."""
        body: dict[str, Any] = {"Text": {"Data": message.text, "Charset": "UTF-8"}}
        if message.html:
            body["Html"] = {"Data": message.html, "Charset": "UTF-8"}
        request: dict[str, Any] = {
            "FromEmailAddress": self._from_header(message.from_address),
            "Destination": {"ToAddresses": [message.to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": body,
                    "Headers": self._headers(message),
                }
            },
            "EmailTags": [{"Name": "notification_id", "Value": _tag_value(message)}],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return request

    def _from_header(self, service_address: str | None = None) -> str:
        """The sending service's address when the message carries one, else the configured."""
        address = service_address or self.from_address
        if not self.from_name:
            return address
        return str(Address(self.from_name, addr_spec=address))

    @staticmethod
    def _headers(message: EmailMessage) -> list[dict[str, str]]:
        return [{"Name": name, "Value": value} for name, value in extra_headers(message)]

    # ---------------------------------------------------------------- calls

    async def _call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        """Run one client call on the instance's threads; SDK failures become typed errors."""
        call = functools.partial(getattr(self._client, operation), **parameters)
        try:
            return await self._threads.run(call)
        except ClientError as e:
            raise client_error(e) from e
        except BotoCoreError as e:
            raise transport_error(e) from e

    def _make_client(self) -> Any:
        config = Config(
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            retries={"total_max_attempts": 1},
            max_pool_connections=self.max_concurrency,
        )
        return _boto_session().client(
            "sesv2",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.config.access_key_id,
            aws_secret_access_key=self.config.secret_access_key,
            config=config,
        )


@functools.cache
def _boto_session() -> boto3.session.Session:
    """One boto3 session per process: it caches the parsed service models, so each provider's
    client costs milliseconds, not a reload. Credentials are given per client. (Creating clients
    is not thread-safe: providers are built on the worker's start-up thread.)"""
    return boto3.session.Session()


def _tag_value(message: EmailMessage) -> str:
    return _TAG_FORBIDDEN.sub("_", message.notification_id)[:256]
