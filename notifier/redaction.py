"""The one placeholder that stands in for a hidden value, wherever a value is hidden.

Sensitive template values in stored and shown content, secret-named fields in log lines and
personal data in Sentry events are all replaced by :data:`REDACTED`, so an operator grepping a
dump, a log or an error report looks for one spelling (there used to be three).
"""

from __future__ import annotations

REDACTED = "[redacted]"

# The one list of secret names: a log field, a setting or a provider option whose name is one
# of these, or has one of SECRET_WORDS as a whole word ("code" masks "otp_code" but not
# "response_code"; "key" alone, not "api_key_id"), holds a secret. Logs mask its value,
# settings also read it from ``NOTIFIER_<NAME>_FILE``, and a providers file may not write it
# literally (``<name>_env`` or ``<name>_file`` instead). Connection strings are listed: they
# carry passwords.
SECRET_WORDS = frozenset(
    {"password", "secret", "token", "authorization", "otp", "pin", "credential"}
)
SECRET_NAMES = frozenset(
    {
        "code",
        "one_time_code",
        "key",
        "api_key",
        "private_key",
        "service_account_json",
        "database_url",
        "broker_url",
        "redis_url",
        "sentry_dsn",
    }
)


def is_secret(name: str) -> bool:
    """Whether a field, setting or option of this name holds a secret."""
    lowered = name.lower()
    return lowered in SECRET_NAMES or any(word in SECRET_WORDS for word in lowered.split("_"))
