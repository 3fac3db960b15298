"""The one row type of every adapter's vendor error table, the one lookup, and the rows and keys
the vendors' tables share.

An adapter translates each vendor answer once: it names the keys the answer may have, most
specific first (an error code, then the HTTP status, then its class) and takes the first row
its table has, through :func:`lookup`; the row builds the typed error. A table's tests walk it
row by row, and the shared contract (:mod:`providers.contract`) checks that every row builds
exactly the error it promises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from providers.interface import (
    InvalidRecipientError,
    PermanentError,
    ProviderAccountError,
    ProviderError,
    ProviderUnavailableError,
    SuppressionReason,
    ThrottledError,
    TransientError,
)

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """One row of an adapter's error table: which typed error a vendor answer becomes.

    ``reason`` is the suppression an invalid recipient gets, ``accepted_unknown`` whether the
    vendor may have the message, ``retry_after`` the wait to use when the vendor's answer names
    none, ``meaning`` the vendor's words for the answer (for the delivery log).
    """

    error: type[ProviderError]
    reason: SuppressionReason | None = None
    accepted_unknown: bool = False
    retry_after: float | None = None
    meaning: str = ""

    def build(
        self, message: str, code: str | int | None, retry_after: float | None = None
    ) -> ProviderError:
        """The error to raise; ``retry_after`` is what the answer said, if anything."""
        if issubclass(self.error, InvalidRecipientError):
            return self.error(
                message, code=code, reason=self.reason or SuppressionReason.INVALID_ADDRESS
            )
        if issubclass(self.error, TransientError):
            wait = self.retry_after if retry_after is None else retry_after
            return self.error(
                message, code=code, retry_after=wait, accepted_unknown=self.accepted_unknown
            )
        return self.error(message, code=code)


def lookup(table: Mapping[K, ErrorRule], *keys: K) -> ErrorRule:
    """The row of the first of ``keys`` that ``table`` has: callers pass the most specific key
    first and end with a catch-all key the table always has (a status class)."""
    for key in keys:
        if key in table:
            return table[key]
    raise KeyError(f"no error rule for any of {keys!r}")


# Keys of the catch-all rows of HTTP vendors' tables, and of failures below HTTP.
HTTP_429 = "http 429"
HTTP_5XX = "http 5xx"
HTTP_4XX = "http 4xx"
CONNECT_FAILED = "connect failed"  # nothing reached the vendor: safe to fail over
ANSWER_LOST = "answer lost"  # the request went out, the answer did not come back


def status_key(status: int) -> str:
    """The catch-all key of an HTTP error status: throttled, the vendor's fault, or ours."""
    if status == 429:
        return HTTP_429
    return HTTP_5XX if status >= 500 else HTTP_4XX


# Rows most tables share.
THROTTLED = ErrorRule(ThrottledError)
UNAVAILABLE = ErrorRule(ProviderUnavailableError)
ACCOUNT_REFUSED = ErrorRule(ProviderAccountError)
PERMANENT = ErrorRule(PermanentError)
INVALID_ADDRESS = ErrorRule(InvalidRecipientError, SuppressionReason.INVALID_ADDRESS)
INVALID_TOKEN = ErrorRule(InvalidRecipientError, SuppressionReason.INVALID_TOKEN)
NOT_SENT = ErrorRule(ProviderUnavailableError, accepted_unknown=False)
MAYBE_SENT = ErrorRule(ProviderUnavailableError, accepted_unknown=True)
# The catch-all rows by HTTP status class, for a table to spread into its own.
BY_STATUS: Mapping[str, ErrorRule] = {
    HTTP_429: THROTTLED,
    HTTP_5XX: UNAVAILABLE,
    HTTP_4XX: PERMANENT,
}
