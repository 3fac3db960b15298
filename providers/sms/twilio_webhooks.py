"""What Twilio posts to us: signed status callbacks (delivery receipts) and inbound SMS.

Framework-free: the web layer hands over the full URL Twilio requested, the form parameters
and the ``X-Twilio-Signature`` header; these functions verify and translate them.

* :func:`verify_signature` checks the signature with the SDK's ``RequestValidator`` (HMAC-SHA1
  of the URL and the sorted parameters, keyed by the account's auth token; see
  https://www.twilio.com/docs/usage/webhooks/webhooks-security). Always verify before parsing.
* :func:`parse_status_callback` turns a status callback into a :class:`Receipt`
  (https://www.twilio.com/docs/messaging/guides/track-outbound-message-status). Statuses
  Twilio may add later are recorded as ``PENDING`` with their raw status: a receipt we do not
  understand must never move a notification to a final state.
* :func:`parse_inbound` turns an incoming message into :class:`InboundSms`, recognising
  Twilio's standard opt-out, opt-in and help keywords
  (https://help.twilio.com/articles/223134027): only a whole message that is exactly one
  keyword counts, ignoring case and surrounding whitespace ("stop please" is not a STOP).

Malformed input (a required parameter missing) raises ``ValueError`` naming the parameter.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from twilio.request_validator import RequestValidator

from providers.interface import Receipt, ReceiptOutcome

PROVIDER = "twilio"

# MessageStatus -> outcome, before error codes are considered.
STATUS_OUTCOMES: Mapping[str, ReceiptOutcome] = {
    "accepted": ReceiptOutcome.PENDING,
    "scheduled": ReceiptOutcome.PENDING,
    "queued": ReceiptOutcome.PENDING,
    "sending": ReceiptOutcome.PENDING,
    "sent": ReceiptOutcome.PENDING,
    "delivered": ReceiptOutcome.DELIVERED,
    "read": ReceiptOutcome.DELIVERED,
    "undelivered": ReceiptOutcome.FAILED,
    "failed": ReceiptOutcome.FAILED,
    "canceled": ReceiptOutcome.FAILED,
}

# Error codes of a failed message that say more than "failed" (https://www.twilio.com/docs/errors/<code>).
FAILURE_CODE_OUTCOMES: Mapping[str, ReceiptOutcome] = {
    "21610": ReceiptOutcome.UNSUBSCRIBED,  # the recipient replied STOP
    "30005": ReceiptOutcome.HARD_BOUNCE,  # unknown destination handset
    "30006": ReceiptOutcome.HARD_BOUNCE,  # landline or unreachable carrier
}


class SmsKeyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


KEYWORDS: Mapping[str, SmsKeyword] = {
    **dict.fromkeys(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"], SmsKeyword.STOP),
    **dict.fromkeys(["START", "YES", "UNSTOP"], SmsKeyword.START),
    **dict.fromkeys(["HELP", "INFO"], SmsKeyword.HELP),
}


@dataclass(frozen=True, slots=True)
class InboundSms:
    from_number: str
    to_number: str
    body: str
    keyword: SmsKeyword | None
    message_sid: str | None = None


def verify_signature(url: str, params: Mapping[str, str], signature: str, auth_token: str) -> bool:
    """True when ``signature`` (the X-Twilio-Signature header) is Twilio's signature of ``url``
    (exactly as Twilio requested it, query string included) and the form ``params``."""
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def parse_status_callback(params: Mapping[str, str]) -> Receipt:
    """A status callback's receipt; ``code`` is Twilio's ErrorCode when there is one."""
    message_sid = _required(params, "MessageSid")
    status = _required(params, "MessageStatus").strip().lower()
    code = (params.get("ErrorCode") or "").strip() or None
    return Receipt(
        provider=PROVIDER,
        provider_message_id=message_sid,
        outcome=receipt_outcome(status, code),
        code=code,
        description=f"twilio error {code}" if code else None,
        recipient=params.get("To") or None,
        raw_status=status,
    )


def receipt_outcome(status: str, code: str | None) -> ReceiptOutcome:
    outcome = STATUS_OUTCOMES.get(status, ReceiptOutcome.PENDING)
    if outcome == ReceiptOutcome.FAILED and code is not None and code in FAILURE_CODE_OUTCOMES:
        return FAILURE_CODE_OUTCOMES[code]
    return outcome


def parse_inbound(params: Mapping[str, str]) -> InboundSms:
    """An incoming SMS, with the opt-out/opt-in/help keyword it is, if it is one."""
    body = params.get("Body") or ""
    return InboundSms(
        from_number=_required(params, "From"),
        to_number=_required(params, "To"),
        body=body,
        keyword=keyword_of(body),
        message_sid=params.get("MessageSid") or params.get("SmsSid") or None,
    )


def keyword_of(body: str) -> SmsKeyword | None:
    return KEYWORDS.get(body.strip().upper())


def _required(params: Mapping[str, str], key: str) -> str:
    value = params.get(key)
    if not value:
        raise ValueError(f"twilio webhook without {key}")
    return value
