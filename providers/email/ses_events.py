"""SES delivery events, as Amazon SNS posts them over HTTP(S): verify, confirm, parse.

A receipts endpoint does, for each POSTed JSON body:

1. :func:`verify_sns_message` (raises :class:`SnsSignatureError`; answer 403 and drop it),
2. :func:`subscription_confirmation_url`: when it returns a URL, GET it once to confirm the
   subscription (nothing else to do),
3. :func:`parse_ses_event`: the :class:`~providers.interface.Receipt` list to record.

Signature checking follows AWS's "Verifying the signatures of Amazon SNS messages"
(https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html): the signing
certificate must come over https from an SNS host, and the signature (SignatureVersion "1" =
SHA1withRSA, "2" = SHA256withRSA, PKCS#1 v1.5) must verify over the canonical string of the
message type's fields. Certificates are fetched by a caller-supplied function (so the HTTP
client, its timeout and any proxy stay the caller's) and cached by URL: AWS publishes each
certificate under its own URL.

Both SES event sources are understood (https://docs.aws.amazon.com/ses/latest/dg/
event-publishing-retrieving-sns-contents.html and .../notification-contents.html):
configuration-set event publishing (``eventType``) and identity notifications
(``notificationType``). SNS "raw message delivery" cannot be signed and is not accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from providers.interface import Receipt, ReceiptOutcome

DEFAULT_CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")

PROVIDER = "ses"

# The fields each message type signs, in the canonical order; optional ones marked below. A
# subscription's confirmation and an unsubscription's sign the same fields.
_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": _CONFIRMATION_FIELDS,
}
_OPTIONAL_FIELDS = frozenset({"Subject"})

_SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}

_DESCRIPTION_LIMIT = 500


class SnsSignatureError(Exception):
    """The message is not provably from SNS: refuse it."""


class SesEventError(ValueError):
    """A verified notification whose SES event cannot be read."""


# --------------------------------------------------------------------------- certificates


class _CertificateCache:
    """Parsed signing certificates by URL, bounded, safe across threads."""

    def __init__(self, max_entries: int = 32) -> None:
        self._entries: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, url: str, fetch: Callable[[str], bytes]) -> x509.Certificate:
        with self._lock:
            cached = self._entries.get(url)
        if cached is not None:
            return cached
        certificate = _load_certificate(url, fetch)
        with self._lock:
            self._entries[url] = certificate
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return certificate


_certificates = _CertificateCache()


def _load_certificate(url: str, fetch: Callable[[str], bytes]) -> x509.Certificate:
    try:
        pem = fetch(url)
    except Exception as e:  # whatever the caller's HTTP client raises
        raise SnsSignatureError("could not fetch the SNS signing certificate") from e
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise SnsSignatureError("the SNS signing certificate is not a PEM certificate") from e


def _checked_sns_url(url: Any, allowed_host: re.Pattern[str], what: str) -> str:
    if not isinstance(url, str):
        raise SnsSignatureError(f"{what} is missing")
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise SnsSignatureError(f"{what} is not https")
    if parts.username or parts.password or parts.port not in (None, 443):
        raise SnsSignatureError(f"{what} has credentials or an unusual port")
    if not parts.hostname or not allowed_host.match(parts.hostname):
        raise SnsSignatureError(f"{what} is not on an SNS host")
    return url


# --------------------------------------------------------------------------- verification


def canonical_string(message: Mapping[str, Any]) -> bytes:
    """The string SNS signs: "Name\\nvalue\\n" for each signed field present, in order."""
    fields = SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise SnsSignatureError("unknown SNS message type")
    return "".join(f"{key}\n{message[key]}\n" for key in fields if key in message).encode()


def verify_sns_message(
    message: Mapping[str, Any],
    fetch_certificate: Callable[[str], bytes],
    allowed_cert_host: re.Pattern[str] = DEFAULT_CERT_HOST,
) -> None:
    """Raise :class:`SnsSignatureError` unless ``message`` is provably signed by SNS."""
    _check_fields(message)
    algorithm = _SIGNATURE_HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SnsSignatureError("unsupported SignatureVersion")
    signature = _decoded_signature(message.get("Signature"))
    url = _checked_sns_url(message.get("SigningCertURL"), allowed_cert_host, "SigningCertURL")
    certificate = _certificates.get(url, fetch_certificate)
    _check_validity(certificate)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SnsSignatureError("the SNS signing certificate does not hold an RSA key")
    try:
        public_key.verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature as e:
        raise SnsSignatureError("the SNS signature does not verify") from e


def _check_fields(message: Mapping[str, Any]) -> None:
    fields = SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise SnsSignatureError("unknown SNS message type")
    missing = [key for key in fields if key not in message and key not in _OPTIONAL_FIELDS]
    if missing:
        raise SnsSignatureError(f"SNS message lacks {', '.join(missing)}")
    if not all(isinstance(message[key], str) for key in fields if key in message):
        raise SnsSignatureError("SNS message fields must be strings")


def _decoded_signature(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise SnsSignatureError("SNS message lacks Signature")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise SnsSignatureError("SNS Signature is not base64") from e


def _check_validity(certificate: x509.Certificate) -> None:
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SnsSignatureError("the SNS signing certificate is not valid now")


def subscription_confirmation_url(
    message: Mapping[str, Any], allowed_host: re.Pattern[str] = DEFAULT_CERT_HOST
) -> str | None:
    """The SubscribeURL to GET when ``message`` (already verified) is a SubscriptionConfirmation;
    None for any other message. A SubscribeURL off SNS's hosts raises SnsSignatureError."""
    if message.get("Type") != "SubscriptionConfirmation":
        return None
    return _checked_sns_url(message.get("SubscribeURL"), allowed_host, "SubscribeURL")


# --------------------------------------------------------------------------- SES events


def parse_ses_event(sns_message: Mapping[str, Any]) -> list[Receipt]:
    """The receipts an SNS Notification carrying an SES event stands for (none for other SNS
    messages and for events that say nothing about delivery, e.g. Open or Click)."""
    if sns_message.get("Type") != "Notification":
        return []
    event = _ses_event(sns_message.get("Message"))
    kind = event.get("eventType") or event.get("notificationType")
    parser = _PARSERS.get(str(kind))
    if parser is None:
        return []
    return parser(event, _message_id(event))


def _ses_event(payload: Any) -> dict[str, Any]:
    try:
        event = json.loads(payload)
    except (TypeError, ValueError) as e:
        raise SesEventError("SNS Message is not JSON") from e
    if not isinstance(event, dict):
        raise SesEventError("SNS Message is not an SES event object")
    return event


def _message_id(event: Mapping[str, Any]) -> str:
    mail = event.get("mail")
    message_id = mail.get("messageId") if isinstance(mail, dict) else None
    if not isinstance(message_id, str) or not message_id:
        raise SesEventError("SES event lacks mail.messageId")
    return message_id


def _detail(event: Mapping[str, Any], key: str) -> dict[str, Any]:
    detail = event.get(key)
    if not isinstance(detail, dict):
        raise SesEventError(f"SES event lacks its {key!r} object")
    return detail


def _receipt(
    message_id: str,
    outcome: ReceiptOutcome,
    raw_status: str,
    recipient: Any,
    occurred_at: Any,
    code: Any = None,
    description: Any = None,
) -> Receipt:
    return Receipt(
        provider=PROVIDER,
        provider_message_id=message_id,
        outcome=outcome,
        code=str(code) if code else None,
        description=str(description)[:_DESCRIPTION_LIMIT] if description else None,
        recipient=str(recipient) if recipient else None,
        occurred_at=_timestamp(occurred_at),
        raw_status=raw_status,
    )


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _delivery(event: Mapping[str, Any], message_id: str) -> list[Receipt]:
    detail = _detail(event, "delivery")
    response = str(detail.get("smtpResponse") or "")
    code = response.split(" ", 1)[0] if response[:3].isdigit() else None
    return [
        _receipt(
            message_id,
            ReceiptOutcome.DELIVERED,
            "Delivery",
            recipient,
            detail.get("timestamp"),
            code,
            response,
        )
        for recipient in detail.get("recipients") or []
    ]


def _bounce(event: Mapping[str, Any], message_id: str) -> list[Receipt]:
    detail = _detail(event, "bounce")
    bounce_type = str(detail.get("bounceType") or "Undetermined")
    outcome = ReceiptOutcome.HARD_BOUNCE if bounce_type == "Permanent" else ReceiptOutcome.FAILED
    raw_status = f"Bounce/{bounce_type}/{detail.get('bounceSubType') or 'Undetermined'}"
    return [
        _receipt(
            message_id,
            outcome,
            raw_status,
            bounced.get("emailAddress"),
            detail.get("timestamp"),
            bounced.get("status"),
            bounced.get("diagnosticCode"),
        )
        for bounced in detail.get("bouncedRecipients") or []
        if isinstance(bounced, dict)
    ]


def _complaint(event: Mapping[str, Any], message_id: str) -> list[Receipt]:
    detail = _detail(event, "complaint")
    feedback = detail.get("complaintFeedbackType")
    raw_status = f"Complaint/{feedback}" if feedback else "Complaint"
    return [
        _receipt(
            message_id,
            ReceiptOutcome.COMPLAINT,
            raw_status,
            complained.get("emailAddress"),
            detail.get("timestamp"),
            description=feedback,
        )
        for complained in detail.get("complainedRecipients") or []
        if isinstance(complained, dict)
    ]


def _delivery_delay(event: Mapping[str, Any], message_id: str) -> list[Receipt]:
    detail = _detail(event, "deliveryDelay")
    raw_status = f"DeliveryDelay/{detail.get('delayType') or 'Undetermined'}"
    return [
        _receipt(
            message_id,
            ReceiptOutcome.PENDING,
            raw_status,
            delayed.get("emailAddress"),
            detail.get("timestamp"),
            delayed.get("status"),
            delayed.get("diagnosticCode"),
        )
        for delayed in detail.get("delayedRecipients") or []
        if isinstance(delayed, dict)
    ]


def _per_destination(
    outcome: ReceiptOutcome, raw_status: str, detail_key: str | None, reason_key: str | None
) -> Callable[[Mapping[str, Any], str], list[Receipt]]:
    """Events about the whole message (Send, Reject, Rendering Failure): one per recipient."""

    def parse(event: Mapping[str, Any], message_id: str) -> list[Receipt]:
        mail = event["mail"]
        detail = event.get(detail_key) if detail_key else None
        reason = detail.get(reason_key) if isinstance(detail, dict) and reason_key else None
        return [
            _receipt(
                message_id,
                outcome,
                raw_status,
                recipient,
                mail.get("timestamp"),
                description=reason,
            )
            for recipient in mail.get("destination") or []
        ]

    return parse


_PARSERS: dict[str, Callable[[Mapping[str, Any], str], list[Receipt]]] = {
    "Delivery": _delivery,
    "Bounce": _bounce,
    "Complaint": _complaint,
    "DeliveryDelay": _delivery_delay,
    "Send": _per_destination(ReceiptOutcome.PENDING, "Send", None, None),
    "Reject": _per_destination(ReceiptOutcome.FAILED, "Reject", "reject", "reason"),
    "Rendering Failure": _per_destination(
        ReceiptOutcome.FAILED, "Rendering Failure", "failure", "errorMessage"
    ),
}
