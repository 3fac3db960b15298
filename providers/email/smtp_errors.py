"""SMTP replies and client failures as typed provider errors (the SMTP adapter's error table).

Kept apart from the adapter (:mod:`providers.email.smtp`) so the table that decides every
outcome reads on its own: the reply code through :data:`REPLY_TABLE` (unknown codes by their
class), a "bad destination mailbox" enhanced status as a hard bounce, and a failure of the
client library by the :class:`Stage` the transaction had reached (before DATA nothing was sent;
during DATA the relay may have the message).
"""

from __future__ import annotations

import asyncio
import enum
import re
import ssl
from collections.abc import Mapping

import aiosmtplib

from providers.error_rules import (
    ErrorRule,
    lookup,
)
from providers.interface import (
    InvalidRecipientError,
    PermanentError,
    ProviderAccountError,
    ProviderError,
    ProviderUnavailableError,
    SuppressionReason,
    TransientError,
)

# SMTP reply codes: RFC 5321 section 4.2 https://www.rfc-editor.org/rfc/rfc5321#section-4.2,
# AUTH replies: RFC 4954 section 6 https://www.rfc-editor.org/rfc/rfc4954#section-6.
# Codes not listed fall back to their class: 4xx transient, 5xx permanent.
REPLY_TABLE: Mapping[int | str, ErrorRule] = {
    421: ErrorRule(ProviderUnavailableError, meaning="service not available"),
    450: ErrorRule(TransientError, meaning="mailbox unavailable, try again"),
    451: ErrorRule(TransientError, meaning="local error in processing"),
    452: ErrorRule(TransientError, meaning="insufficient system storage"),
    454: ErrorRule(
        ProviderUnavailableError, meaning="TLS or authentication temporarily unavailable"
    ),
    # our credentials, not the message: fail over, open the breaker, alert
    530: ErrorRule(ProviderAccountError, meaning="authentication required"),
    534: ErrorRule(ProviderAccountError, meaning="authentication mechanism too weak"),
    535: ErrorRule(ProviderAccountError, meaning="authentication failed"),
    538: ErrorRule(ProviderAccountError, meaning="encryption required for authentication"),
    # a hard bounce only with an "unknown mailbox" enhanced status, else permanent (reply_error)
    550: ErrorRule(
        InvalidRecipientError, SuppressionReason.HARD_BOUNCE, meaning="mailbox unavailable"
    ),
    551: ErrorRule(InvalidRecipientError, SuppressionReason.HARD_BOUNCE, meaning="user not local"),
    552: ErrorRule(PermanentError, meaning="exceeded storage allocation"),
    553: ErrorRule(
        InvalidRecipientError, SuppressionReason.HARD_BOUNCE, meaning="mailbox name not allowed"
    ),
    554: ErrorRule(PermanentError, meaning="transaction failed"),
    555: ErrorRule(PermanentError, meaning="MAIL or RCPT parameters not recognized"),
    "4xx": ErrorRule(TransientError, meaning="temporary failure"),
    "5xx": ErrorRule(PermanentError, meaning="permanent failure"),
    "other": ErrorRule(TransientError, meaning="unexpected reply"),
}

# RFC 3463 / IANA enhanced status codes that mean "this recipient address does not exist":
# https://www.iana.org/assignments/smtp-enhanced-status-codes/smtp-enhanced-status-codes.xhtml
# Only with one of these does a 550/551/553 suppress the address; "550 5.7.1 relaying denied"
# is a permanent error of ours, not the recipient's.
UNKNOWN_MAILBOX_STATUSES = frozenset({"5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10"})

_ENHANCED_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


class Stage(enum.Enum):
    """How far a transaction got; decides whether the relay may have the message."""

    CONNECT = "connect"
    ENVELOPE = "envelope"
    DATA = "data"


class Failed(Exception):
    """A session failure and the stage it happened in (internal to this module)."""

    def __init__(self, stage: Stage, cause: BaseException) -> None:
        super().__init__(stage.value)
        self.stage = stage
        self.cause = cause

    @property
    def stale_session(self) -> bool:
        """MAIL FROM failed because the relay had closed the idle session: nothing was sent."""
        if self.stage is not Stage.ENVELOPE:
            return False
        if isinstance(self.cause, aiosmtplib.SMTPServerDisconnected):
            return True
        return isinstance(self.cause, aiosmtplib.SMTPResponseException) and self.cause.code == 421


def enhanced_status(reply_text: str) -> str | None:
    """The RFC 3463 status at the start of a reply text ("5.1.1 user unknown" -> "5.1.1")."""
    match = _ENHANCED_STATUS.match(reply_text or "")
    return match.group(1) if match else None


def reply_error(code: int, reply_text: str) -> ProviderError:
    """The typed error for an SMTP reply, by :data:`REPLY_TABLE`."""
    rule = lookup(REPLY_TABLE, code, reply_class(code))
    if rule.error is ProviderAccountError:
        return rule.build(f"SMTP authentication failed ({code} {rule.meaning})", code)
    description = f"SMTP {code} {rule.meaning}: {_one_line(reply_text)}"
    if rule.error is InvalidRecipientError and enhanced_status(reply_text) not in (
        UNKNOWN_MAILBOX_STATUSES
    ):
        return PermanentError(description, code=code)  # "550 5.7.1 relaying denied": ours
    return rule.build(description, code)


def reply_class(code: int) -> str:
    """The catch-all key of a reply code without a row of its own."""
    if 400 <= code < 600:
        return f"{code // 100}xx"
    return "other"


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join((text or "").split())[:limit]


def _certificate_rejected(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def translate_failure(stage: Stage, exc: BaseException) -> ProviderError:
    """The typed error for a failure of the client library at ``stage``."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return reply_error(exc.code, exc.message)
    if _certificate_rejected(exc):
        return ProviderAccountError("SMTP server certificate did not verify", code="tls_verify")
    if isinstance(exc, ValueError):  # from_address was checked at start-up: the recipient's
        return InvalidRecipientError(
            "recipient address cannot be sent over SMTP", code="invalid_address"
        )
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return PermanentError(f"SMTP server lacks a required extension: {exc}", code="unsupported")
    if stage is Stage.CONNECT or isinstance(exc, aiosmtplib.SMTPConnectError):
        return ProviderUnavailableError(
            f"SMTP connection failed: {_one_line(str(exc))}", code="connect"
        )
    accepted_unknown = stage is Stage.DATA
    if isinstance(exc, (aiosmtplib.SMTPTimeoutError, asyncio.TimeoutError)):
        return ProviderUnavailableError(
            f"SMTP timed out during {stage.value}",
            code="timeout",
            accepted_unknown=accepted_unknown,
        )
    return ProviderUnavailableError(
        f"SMTP session lost during {stage.value}: {type(exc).__name__}",
        code="disconnected",
        accepted_unknown=accepted_unknown,
    )
