"""Recipient validation and normalisation: the same rules at intake, in search and in support.

Email: email-validator (syntax only, no DNS at intake), normalised to lower case.
Phone: phonenumbers, E.164. Push: a device token, kept as given after trimming.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from notifier.errors import ErrorCode, field_error
from providers.interface import Channel, PushPlatform

_PHONE_CHARACTERS = re.compile(r"^\+?[0-9\s\-().]+$")
_APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
_FCM_TOKEN = re.compile(r"^[A-Za-z0-9_:\-\.]{16,4096}$")


def normalise_email(value: str) -> str:
    """The address email-validator normalises, lower-cased. The domain's validation (IDNA,
    special-use names: most of the cost) is remembered per domain for plain addresses, whose
    local part email-validator keeps as it is; anything else takes the library's whole path."""
    address = value.strip()
    fast = _plain_address(address)
    if fast is not None:
        return fast
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as e:
        raise field_error(
            ErrorCode.INVALID_RECIPIENT, "to", f"not a valid email address: {e}"
        ) from e
    return result.normalized.lower()


# A dot-atom of the most common ASCII characters: a subset of what email-validator accepts
# unquoted, and which it returns unchanged (no Unicode normalisation applies to it).
_PLAIN_LOCAL_PART = re.compile(r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*")
_LOCAL_PART_MAX = 64  # RFC 5321, as email-validator enforces
_ADDRESS_MAX = 254  # RFC 3696 errata, as email-validator enforces (characters and UTF-8 bytes)


def _plain_address(address: str) -> str | None:
    """``address`` normalised from the remembered validation of its domain, or None when it is
    not a plain address with a valid domain (then email-validator judges all of it)."""
    local, at, domain = address.rpartition("@")
    if not at or len(local) > _LOCAL_PART_MAX or not _PLAIN_LOCAL_PART.fullmatch(local):
        return None
    forms = _domain_forms(domain)
    if forms is None:
        return None
    unicode_domain, ascii_domain = forms
    longest = max(len(unicode_domain.encode("utf-8")), len(ascii_domain))
    if len(local) + 1 + longest > _ADDRESS_MAX:
        return None
    return f"{local}@{unicode_domain}".lower()


@functools.lru_cache(maxsize=4096)
def _domain_forms(domain: str) -> tuple[str, str] | None:
    """The normalised and ASCII forms email-validator gives ``domain``, or None if it refuses it
    (the caller then lets the library produce the error for the whole address)."""
    try:
        result = validate_email("a@" + domain, check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.domain, result.ascii_domain


def normalise_phone(value: str, default_region: str | None = None) -> str:
    """E.164. Without a default region the number must carry its country code (+44...).

    Only digits, a leading ``+``, spaces and ``- ( ) .`` are accepted: phonenumbers would turn
    letters into keypad digits (``+447911abc456`` -> ``+447911222456``) and drop an extension,
    and a typo must not send a login code to somebody else."""
    if not _PHONE_CHARACTERS.match(value.strip()):
        raise field_error(
            ErrorCode.INVALID_RECIPIENT,
            "to",
            "not a valid phone number: only digits, a leading +, spaces and - ( ) . are allowed "
            "(no letters or extensions), e.g. +447911123456",
        )
    try:
        number = phonenumbers.parse(value.strip(), default_region)
    except phonenumbers.NumberParseException as e:
        raise field_error(
            ErrorCode.INVALID_RECIPIENT,
            "to",
            "not a valid phone number: use E.164, e.g. +447911123456",
        ) from e
    if number.extension:
        raise field_error(
            ErrorCode.INVALID_RECIPIENT, "to", "phone numbers with an extension cannot receive SMS"
        )
    if not phonenumbers.is_valid_number(number):
        raise field_error(
            ErrorCode.INVALID_RECIPIENT, "to", "not a valid phone number for its region"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_push_token(value: str, platform: PushPlatform) -> str:
    token = value.strip()
    pattern = _APNS_TOKEN if platform == PushPlatform.APNS else _FCM_TOKEN
    if not pattern.match(token):
        raise field_error(
            ErrorCode.INVALID_RECIPIENT, "to", f"not a valid {platform.value} device token"
        )
    return token


def normalise(channel: Channel, value: str, platform: PushPlatform | None = None) -> str:
    if channel == Channel.EMAIL:
        return normalise_email(value)
    if channel == Channel.SMS:
        return normalise_phone(value)
    return normalise_push_token(value, platform or PushPlatform.FCM)


# Regions tried for a phone number written in local format (``0491 570 159``), which cannot be
# E.164 without one. NOTIFIER_PHONE_SEARCH_REGIONS replaces the list.
DEFAULT_SEARCH_REGIONS = (
    "GB",
    "US",
    "AU",
    "CA",
    "IE",
    "NZ",
    "IN",
    "ZA",
    "DE",
    "FR",
    "ES",
    "IT",
    "NL",
)


def normalise_for_search(value: str, regions: Sequence[str] = DEFAULT_SEARCH_REGIONS) -> list[str]:
    """Every normalised form a free-text recipient query could mean (support search).

    ``Ada@Example.com`` -> the email; ``+44 7700 900123`` or ``447700900123`` -> that number;
    a local-format number (``07700 900123``, ``0491 570 159``) -> its E.164 form in the *first*
    region of ``regions`` where it is a valid number (the order is the operator's preference:
    a local number can be valid in several countries, and matching all of them would show
    strangers' messages); a token as given.
    """
    text = value.strip()
    forms: list[str] = []
    if "@" in text:
        try:
            forms.append(normalise_email(text))
        except Exception:  # a query need not be valid
            forms.append(text.lower())
        return forms
    digits = re.sub(r"[\s\-\(\)\.]", "", text)
    if re.fullmatch(r"\+?\d{6,16}", digits):
        candidates: list[tuple[str, str | None]] = [
            (digits if digits.startswith("+") else "+" + digits, None)
        ]
        if not digits.startswith("+"):
            candidates += [(digits, region) for region in regions]
        for number, region in candidates:
            try:
                forms.append(normalise_phone(number, region))
                break
            except Exception:  # noqa: S112 - not a number in that region
                continue
    forms.append(text)
    return list(dict.fromkeys(forms))
