"""Unit tests of the small domain rules: recipients, rendering, segments, statuses, security."""

from __future__ import annotations

import pytest

from notifier.errors import ErrorCode, NotifierError
from notifier.recipients import (
    normalise_email,
    normalise_for_search,
    normalise_phone,
    normalise_push_token,
)
from notifier.redaction import REDACTED
from notifier.rendering import render_content
from notifier.security import (
    Sealer,
    generate_api_key,
    key_matches,
    parse_prefix,
    request_fingerprint,
)
from notifier.sms_segments import SmsEncoding, count_segments
from notifier.statuses import ALLOWED_FROM, FINAL_STATUSES, Status, can_move
from providers.interface import PushPlatform


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        ("  bob@example.org ", "bob@example.org"),
    ],
)
def test_emails_are_normalised(given: str, expected: str) -> None:
    assert normalise_email(given) == expected


@pytest.mark.parametrize("bad", ["ada", "ada@", "@example.com", "a b@example.com", "ada@localhost"])
def test_invalid_emails_are_rejected_on_to(bad: str) -> None:
    with pytest.raises(NotifierError) as e:
        normalise_email(bad)
    assert e.value.code == ErrorCode.INVALID_RECIPIENT and e.value.details[0].field == "to"


@pytest.mark.parametrize(
    "given", ["+447911123456", "+44 7911 123456", "+44 (0)7911-123-456", "+44.7911.123.456"]
)
def test_phones_are_normalised_to_e164(given: str) -> None:
    assert normalise_phone(given) == "+447911123456"


@pytest.mark.parametrize("bad", ["07911123456", "+44 7911", "+999 1234567", "phone"])
def test_invalid_phones_are_rejected(bad: str) -> None:
    with pytest.raises(NotifierError):
        normalise_phone(bad)


def test_push_tokens_are_checked_per_platform() -> None:
    assert normalise_push_token("AB" * 32, PushPlatform.APNS) == "AB" * 32
    with pytest.raises(NotifierError):
        normalise_push_token("not-hex" * 10, PushPlatform.APNS)
    with pytest.raises(NotifierError):
        normalise_push_token("bad token with spaces", PushPlatform.FCM)


def test_search_terms_cover_common_spellings() -> None:
    assert "+447911123456" in normalise_for_search("07911 123456")
    assert "+447911123456" in normalise_for_search("+44 7911 123456")
    assert normalise_for_search("ADA@example.com")[0] == "ada@example.com"


def test_rendering_redacts_sensitive_fields_only_in_the_stored_copy() -> None:
    rendered = render_content(
        {"body": "Code {{ code }} for {{ name }}"},
        {"code": "583920", "name": "Ada"},
        frozenset({"code"}),
    )
    assert rendered.content == {"body": "Code 583920 for Ada"}
    assert rendered.redacted == {"body": f"Code {REDACTED} for Ada"}
    assert rendered.has_secrets


def test_html_is_autoescaped_text_is_not() -> None:
    rendered = render_content(
        {"body": "{{ x }}", "html": "<p>{{ x }}</p>"}, {"x": "<b>"}, frozenset()
    )
    assert rendered.content == {"body": "<b>", "html": "<p>&lt;b&gt;</p>"}


def test_sandbox_refuses_attribute_escapes() -> None:
    with pytest.raises(NotifierError) as e:
        render_content({"body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}, {}, frozenset())
    assert e.value.code == ErrorCode.TEMPLATE_ERROR


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, SmsEncoding.GSM7, 1),
        ("a" * 161, SmsEncoding.GSM7, 2),
        ("a" * 306, SmsEncoding.GSM7, 2),
        ("a" * 307, SmsEncoding.GSM7, 3),
        ("€" * 80, SmsEncoding.GSM7, 1),
        ("€" * 81, SmsEncoding.GSM7, 2),
        ("é" * 160, SmsEncoding.GSM7, 1),
        ("ą" * 70, SmsEncoding.UCS2, 1),
        ("ą" * 71, SmsEncoding.UCS2, 2),
        ("😀" * 35, SmsEncoding.UCS2, 1),
        ("😀" * 36, SmsEncoding.UCS2, 2),
    ],
)
def test_sms_segments(text: str, encoding: SmsEncoding, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.segments) == (encoding, segments)


def test_final_statuses_never_move_and_only_retry_loops_back() -> None:
    for final in FINAL_STATUSES:
        assert not any(can_move(final, target) for target in Status)
    backwards = [
        (src, dst)
        for dst, sources in ALLOWED_FROM.items()
        for src in sources
        if list(Status).index(src) > list(Status).index(dst)
    ]
    assert sorted(backwards) == sorted(
        [(Status.SENDING, Status.QUEUED), (Status.QUEUED, Status.SCHEDULED)]
    )


def test_api_keys_are_stored_as_hashes_and_checked_in_constant_time() -> None:
    new = generate_api_key()
    assert new.plaintext not in new.secret_hash and len(new.secret_hash) == 64
    assert parse_prefix(new.plaintext) == new.prefix
    assert key_matches(new.plaintext, new.secret_hash)
    assert not key_matches(new.plaintext + "x", new.secret_hash)
    assert parse_prefix("Bearer nonsense") is None


def test_sealer_round_trips_and_refuses_another_key() -> None:
    token = Sealer("a" * 40).seal({"body": "583920"})
    assert "583920" not in token
    assert Sealer("a" * 40).unseal(token) == {"body": "583920"}
    with pytest.raises(ValueError):
        Sealer("b" * 40).unseal(token)


def test_request_fingerprint_ignores_key_order() -> None:
    assert request_fingerprint({"a": 1, "b": 2}, "k" * 32) == request_fingerprint(
        {"b": 2, "a": 1}, "k" * 32
    )
    assert request_fingerprint({"a": 1}, "k" * 32) != request_fingerprint({"a": 2}, "k" * 32)


def test_request_fingerprint_is_keyed_so_a_dump_does_not_reveal_the_body() -> None:
    import hashlib
    import json

    body = {"data": {"code": "583920"}}
    plain = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert request_fingerprint(body, "k" * 32) != plain
    assert request_fingerprint(body, "k" * 32) != request_fingerprint(body, "other-secret" * 3)
