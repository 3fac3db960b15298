"""The declarative option schemas (providers/options.py): the sentences a bad option gets, the
default send rates the README promises, and the secret options the logs mask."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from notifier.provider_config import provider_classes
from notifier.redaction import is_secret
from providers.interface import ConfigurationError, Lane
from providers.sms.sns import SnsProvider

README = Path(__file__).resolve().parents[2] / "providers" / "README.md"
SNS = {"region": "eu-west-1"}


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        ({"timeout_seconds": "ten"}, "timeout_seconds must be a positive number"),
        ({"timeout_seconds": 0}, "timeout_seconds must be a positive number"),
        ({"max_concurrency": 2.5}, "max_concurrency must be a positive integer"),
        ({"check_opted_out": "maybe"}, "check_opted_out must be true or false"),
        ({"rate_limit": "fast"}, 'rate_limit must be a rate such as "100/second"'),
        ({"region": ""}, "needs the 'region' option"),
        ({"access_key_id": "AKIA0"},
         "set both 'access_key_id' and 'secret_access_key', or neither"),
    ],
)  # fmt: skip
def test_a_bad_option_gets_one_clear_sentence(options: dict[str, Any], sentence: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SnsProvider("sns-main", Lane.SMS_TRANSACTIONAL, {**SNS, **options})

    assert str(caught.value) == f"provider 'sns-main' (sns): {sentence}"


def test_a_secret_value_is_never_repeated_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SnsProvider(
            "sns-main",
            Lane.SMS_TRANSACTIONAL,
            {**SNS, "secret_access_key": "wJalrXUtnFEMI-secret", "max_concurrency": "x"},
        )

    assert "wJalrXUtnFEMI-secret" not in str(caught.value)


def test_the_readme_default_rates_are_the_schemas_defaults() -> None:
    section = README.read_text().split("## Send rates")[1].split("\n## ")[0]
    documented = {
        kind: None if rate == "none" else rate
        for kind, rate in re.findall(r"^\| `(\w+)` \| \**([\w/,]+?)\** \|", section, re.M)
    }

    declared = {kind: cls.options_schema.default_rate() for kind, cls in provider_classes().items()}

    assert documented == {kind: declared[kind] for kind in documented}
    assert set(documented) >= {"smtp", "ses", "twilio", "sns", "fcm", "apns", "outbox"}


def test_every_secret_option_is_masked_by_the_one_redaction_list() -> None:
    """The schemas say which options are secrets; the logs mask by the one list of secret names
    (notifier/redaction.py): every secret option of every type must be on it."""
    for kind, cls in provider_classes().items():
        unmasked = {name for name in cls.options_schema.secret_names() if not is_secret(name)}
        assert not unmasked, f"{kind}: {unmasked}"
