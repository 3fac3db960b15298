"""The one list of secret names (notifier/redaction.py) decides logs, settings and provider
options alike: these pin what it covers, so a rename cannot quietly un-hide a secret."""

from __future__ import annotations

import pytest

from notifier.config import Settings
from notifier.redaction import is_secret


def test_the_secret_settings_are_the_credentials_and_connection_strings() -> None:
    secret = {name for name in Settings.model_fields if is_secret(name)}

    assert secret == {
        "secret_key",
        "twilio_auth_token",
        "database_url",
        "broker_url",
        "redis_url",
        "sentry_dsn",
    }


@pytest.mark.parametrize(
    "name",
    ["password", "auth_token", "secret_access_key", "private_key", "key", "api_key",
     "service_account_json", "token", "code", "otp_code", "webhook_secret", "Authorization"],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret(name)


@pytest.mark.parametrize(
    "name", ["response_code", "api_key_id", "key_id", "notification_id", "provider", "host"]
)
def test_names_that_are_not_secret(name: str) -> None:
    assert not is_secret(name)
