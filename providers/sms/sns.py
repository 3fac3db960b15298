"""SMS through Amazon SNS (boto3 ``sns`` client, ``Publish`` with ``PhoneNumber``).

One instance serves one lane. The SNS SMS type (``AWS.SNS.SMS.SMSType``) comes from that lane
and nothing else: a promotional instance always publishes ``Promotional``, a transactional one
``Transactional``.

Options (secrets already resolved):

``region`` (required)
    The AWS region that sends the SMS, e.g. ``eu-west-1``.
``access_key_id`` / ``secret_access_key`` (optional, both or neither)
    Static credentials; without them boto3's default chain applies (environment, instance or
    task role). Never logged, never in error messages.
``endpoint_url`` (optional)
    Another SNS endpoint; tests point it at moto's server or a local fake.
``sender_id`` (optional)
    Alphanumeric sender ID (``AWS.SNS.SMS.SenderID``), where the destination country allows.
``check_opted_out`` (optional, default false)
    Ask SNS (``CheckIfPhoneNumberIsOptedOut``) before each publish. SNS accepts a publish to an
    opted-out number and silently drops it; with this option such a message fails with
    ``InvalidRecipientError(reason=STOP)`` instead, at the price of one more API call (that API
    is limited to 50 calls per second per account).
``timeout_seconds`` (optional, default 10)
    Connect and read timeout of each API call.
``max_concurrency`` (optional, default 64)
    Threads (and pooled HTTP connections) running the synchronous client for this instance.

botocore's own retries are switched off (one attempt per call): retrying is the delivery
engine's decision, and a retried publish after a read timeout could send the SMS twice.
The client's failures are translated once, through :data:`ERROR_TABLE`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import model_validator

from providers.error_rules import (
    ACCOUNT_REFUSED,
    ANSWER_LOST,
    BY_STATUS,
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
)
from providers.interface import (
    Category,
    Channel,
    InvalidRecipientError,
    Message,
    Provider,
    SendResult,
    SmsMessage,
    SuppressionReason,
    parse_retry_after,
)
from providers.options import ProviderOptions, option, send_rate
from providers.sdk_threads import SdkThreads

T = TypeVar("T")

SMS_TYPES: Mapping[Category, str] = {
    Category.TRANSACTIONAL: "Transactional",
    Category.PROMOTIONAL: "Promotional",
}
PHONE_NUMBER = "PhoneNumber"  # suffix of error-table keys whose error names the phone number
NAMES_PHONE_NUMBER = re.compile(r"phone\s*number", re.IGNORECASE)
CLIENT_REFUSED = "client refused"  # botocore refused before sending: no usable credentials
BAD_PARAMETERS = "bad parameters"  # botocore refused the request's parameters before sending
ERRORS_DOC = "https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html"


# SNS answers and what they mean for us. Publish's errors:
# https://docs.aws.amazon.com/sns/latest/api/API_Publish.html#API_Publish_Errors, errors common
# to all AWS query APIs: https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html, opt-outs:
# https://docs.aws.amazon.com/sns/latest/dg/sms_manage.html#sms_manage_optout. Keys are SNS
# error codes ("<code>:PhoneNumber" when the error's message names the phone number, so a bad
# sender ID or an over-long message never suppresses a good number), then HTTP status classes,
# then failures below HTTP.
ERROR_TABLE: Mapping[str, ErrorRule] = {
    "Throttling": THROTTLED,
    "Throttled": THROTTLED,  # ThrottledException, HTTP 429
    "InternalError": UNAVAILABLE,
    "InternalFailure": UNAVAILABLE,
    "ServiceUnavailable": UNAVAILABLE,
    f"InvalidParameter:{PHONE_NUMBER}": INVALID_ADDRESS,
    f"InvalidParameterValue:{PHONE_NUMBER}": INVALID_ADDRESS,
    f"ParameterValueInvalid:{PHONE_NUMBER}": INVALID_ADDRESS,  # InvalidParameterValueException
    "OptedOut": ErrorRule(InvalidRecipientError, SuppressionReason.STOP),  # OptedOutException
    # our account or credentials, not the message: fail over, open the breaker, alert
    "AuthorizationError": ACCOUNT_REFUSED,
    "InvalidClientTokenId": ACCOUNT_REFUSED,
    "SignatureDoesNotMatch": ACCOUNT_REFUSED,
    "AccessDenied": ACCOUNT_REFUSED,
    "KMSAccessDenied": ACCOUNT_REFUSED,
    **BY_STATUS,
    CONNECT_FAILED: NOT_SENT,
    ANSWER_LOST: MAYBE_SENT,
    CLIENT_REFUSED: ACCOUNT_REFUSED,
    BAD_PARAMETERS: PERMANENT,
}


def client_error(error: ClientError) -> Exception:
    """The typed error for an SNS error answer (without AWS's prose, which may quote the
    recipient)."""
    details = error.response.get("Error", {})
    metadata = error.response.get("ResponseMetadata", {})
    code = str(details.get("Code") or "")
    status = int(metadata.get("HTTPStatusCode") or 0)
    key = error_key(code, status, str(details.get("Message") or ""))
    text = f"sns answered HTTP {status}, error {code or status}: {ERRORS_DOC}"
    retry_after = parse_retry_after(metadata.get("HTTPHeaders", {}).get("retry-after"))
    return lookup(ERROR_TABLE, key).build(text, code or str(status), retry_after)


def error_key(code: str, status: int, aws_message: str) -> str:
    """The most specific key of the table that this answer has."""
    keys = [code, HTTP_429 if status == 429 else HTTP_5XX if status >= 500 else HTTP_4XX]
    if NAMES_PHONE_NUMBER.search(aws_message):
        keys.insert(0, f"{code}:{PHONE_NUMBER}")
    return next(key for key in keys if key in ERROR_TABLE)


def botocore_error(error: BotoCoreError) -> Exception:
    """The typed error for a failure below HTTP, or before the request was made."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        key, text = CLIENT_REFUSED, f"sns request refused by the client ({type(error).__name__})"
    elif isinstance(error, ParamValidationError):
        key, text = BAD_PARAMETERS, "sns request parameters refused by the client"
    elif isinstance(error, BotoConnectionError):
        key, text = CONNECT_FAILED, f"sns unreachable ({type(error).__name__})"
    else:  # HTTPClientError (read timeout, connection closed) and anything unforeseen
        key, text = ANSWER_LOST, f"sns answer lost after sending ({type(error).__name__})"
    return lookup(ERROR_TABLE, key).build(text, key.replace(" ", "_"))


class SnsOptions(ProviderOptions):
    """The SNS adapter's options (the list in the module docstring)."""

    rate_limit: str | None = send_rate(
        "20/second", "SNS's default SMS quota per account by default"
    )
    region: str = option(help="the AWS region that sends the SMS")
    access_key_id: str | None = option(None, help="AWS access key id (with secret_access_key)")
    secret_access_key: str | None = option(None, secret=True, help="AWS secret access key")
    endpoint_url: str | None = option(None, help="another SNS endpoint")
    sender_id: str | None = option(None, help="alphanumeric sender ID")
    check_opted_out: bool = option(False, help="ask SNS before each publish whether opted out")
    timeout_seconds: float = option(10, gt=0, help="connect and read timeout of each call")
    max_concurrency: int = option(64, ge=1, help="threads and pooled connections")

    @model_validator(mode="after")
    def _both_keys_or_neither(self) -> Self:
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ValueError("set both 'access_key_id' and 'secret_access_key', or neither")
        return self

    def credentials(self) -> dict[str, str]:
        if not self.access_key_id or not self.secret_access_key:
            return {}
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
        }


def string_attribute(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


class SnsProvider(Provider):
    kind: ClassVar[str] = "sns"
    channel: ClassVar[Channel] = Channel.SMS
    options_schema: ClassVar[type[ProviderOptions]] = SnsOptions
    config: SnsOptions

    def _configure(self) -> None:
        self.region = self.config.region
        self.sms_type = SMS_TYPES[self.lane.category]
        self.sender_id = self.config.sender_id
        self.check_opted_out = self.config.check_opted_out
        timeout, max_concurrency = self.config.timeout_seconds, self.config.max_concurrency
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"total_max_attempts": 1},
            max_pool_connections=max_concurrency,
        )
        session = boto3.session.Session(region_name=self.region, **self.config.credentials())
        self._client = session.client("sns", endpoint_url=self.config.endpoint_url, config=config)
        self._threads = SdkThreads(max_concurrency, f"sns-{self.name}")

    async def _send(self, message: Message) -> SendResult:
        message = self.narrow(message, SmsMessage)
        if self.check_opted_out:
            await self._refuse_opted_out(message.to)
        answer = await self._call(self._client.publish, **self.publish_params(message))
        return SendResult(provider_message_id=answer["MessageId"], response_code="200")

    def publish_params(self, message: SmsMessage) -> dict[str, Any]:
        attributes = {"AWS.SNS.SMS.SMSType": string_attribute(self.sms_type)}
        sender_id = message.sender_id or self.sender_id  # the service's, else the configured
        if sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = string_attribute(str(sender_id))
        return {"PhoneNumber": message.to, "Message": message.body, "MessageAttributes": attributes}

    async def _refuse_opted_out(self, phone_number: str) -> None:
        call = self._client.check_if_phone_number_is_opted_out
        answer = await self._call(call, phoneNumber=phone_number)
        if answer.get("isOptedOut"):
            opted_out = lookup(ERROR_TABLE, "OptedOut")
            raise opted_out.build("recipient opted out of SMS from this account", "OptedOut")

    async def check(self, connect: bool = False) -> str:
        description = f"sns in {self.region}, {self.sms_type} SMS"
        if not connect:
            return description
        call = self._client.get_sms_attributes
        answer = await self._call(call, attributes=["DefaultSMSType", "MonthlySpendLimit"])
        limit = answer.get("attributes", {}).get("MonthlySpendLimit", "default")
        return f"{description}: authenticated, monthly spend limit {limit} USD"

    async def close(self) -> None:
        await self._threads.close()
        self._client.close()

    async def _call(self, function: Callable[..., T], **kwargs: Any) -> T:
        return await self._threads.run(functools.partial(self._translated, function, kwargs))

    @staticmethod
    def _translated(function: Callable[..., T], kwargs: dict[str, Any]) -> T:
        """Runs on an executor thread: the client call, its failures translated to ours."""
        try:
            return function(**kwargs)
        except ClientError as e:
            raise client_error(e) from e
        except BotoCoreError as e:
            raise botocore_error(e) from e
