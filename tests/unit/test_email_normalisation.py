"""normalise_email remembers domains' validations: every answer must stay email-validator's."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email

from notifier.errors import NotifierError
from notifier.recipients import _domain_forms, normalise_email

ADDRESSES = [
    "ada@example.com",
    "Ada@Example.COM",
    " a.b+c@sub.example.co.uk ",
    "postmaster@EXAMPLE.com",
    "user%tag@example.net",
    "a_b-c@example.com",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "@example.com",
    "a@",
    "a@localhost",
    "a@example",
    "a@example.invalid",
    "a@[1.2.3.4]",
    "a@xn--bcher-kva.example",
    "a@bücher.example",
    "é@example.com",
    "a@-example.com",
    "a@example.com.",
    "a@example..com",
    "a@ex_ample.com",
    "a@b@example.com",
    "Name <a@example.com>",
    '"a b"@example.com',
    "x" * 64 + "@example.com",
    "x" * 65 + "@example.com",
    "x" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 50 + ".com",
    "a@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 50,
    "a@" + "é" * 50 + ".com",
]


def _library(address: str) -> str:
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as e:
        return f"error: not a valid email address: {e}"


def _ours(address: str) -> str:
    try:
        return normalise_email(address)
    except NotifierError as e:
        return "error: " + e.envelope()["error"]["details"][0]["message"]


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_same_answer_as_email_validator_cold_and_with_the_domain_remembered(
    address: str,
) -> None:
    _domain_forms.cache_clear()
    assert _ours(address) == _library(address)
    _ours("someone@" + address.rpartition("@")[2])  # the domain is now remembered (if valid)
    assert _ours(address) == _library(address)


def test_a_plain_address_at_a_remembered_domain_skips_the_domain_validation() -> None:
    _domain_forms.cache_clear()
    normalise_email("one@example.org")
    normalise_email("Two@Example.org")
    info = _domain_forms.cache_info()
    assert (info.misses, info.hits) == (2, 0)  # the domain's case differs: its own entry
    normalise_email("three@example.org")
    assert _domain_forms.cache_info().hits == 1
