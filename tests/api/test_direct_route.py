"""POST /v1/notifications answers well-formed JSON on its direct path (notifier/api/direct_route.py)
and everything else on the declared endpoint: both must answer alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifier.api.direct_route import DirectRoute
from notifier.api.v1 import notifications
from tests.factories import email, push, sms

# a content type FastAPI reads as JSON but the direct path leaves to the declared endpoint
DECLARED = "application/vnd.notifier+json"
DIRECT = "application/json; charset=utf-8"
VARYING = {"id", "created_at", "expires_at"}


def _post(client: Any, auth: dict[str, str], payload: Any, content_type: str, **headers: str):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        "/v1/notifications",
        content=body,
        headers={**auth, "Content-Type": content_type, **headers},
    )


def test_the_route_is_direct() -> None:
    routes = [
        r
        for r in notifications.router.routes
        if getattr(r, "path", "") == "/v1/notifications" and "POST" in getattr(r, "methods", ())
    ]
    assert routes
    assert all(isinstance(r, DirectRoute) for r in routes)


@pytest.mark.parametrize(
    "payload",
    [
        email(to="Ada@Example.COM"),
        sms(),
        push(),
        {
            **email(),
            "send_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            "reference": "r",
        },
    ],
)
def test_direct_and_declared_paths_answer_alike(client, auth, payload) -> None:
    direct = _post(client, auth, payload, DIRECT)
    declared = _post(client, auth, payload, DECLARED)
    assert (direct.status_code, declared.status_code) == (202, 202), (direct.text, declared.text)
    assert direct.headers["content-type"] == declared.headers["content-type"]
    a, b = direct.json(), declared.json()
    assert list(a) == list(b)  # the same fields, in the same order
    assert {k: v for k, v in a.items() if k not in VARYING} == {
        k: v for k, v in b.items() if k not in VARYING
    }
    assert a["id"] != b["id"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"channel": "email"}',
        json.dumps({**email(), "to": "not-an-address"}).encode(),
        json.dumps({**email(), "reference": "a\u0000b"}).encode(),
        b'{"channel": "email", "to": "a@example.com", "subject": "s", "body": "\\ud800"}',
        b"\xef\xbb\xbf" + json.dumps(email()).encode(),
    ],
)
def test_what_pydantic_refuses_from_bytes_gets_the_declared_endpoints_answer(
    client, auth, body: bytes
) -> None:
    direct = _post(client, auth, body, DIRECT)
    declared = _post(client, auth, body, DECLARED)
    assert direct.status_code == declared.status_code
    a, b = direct.json(), declared.json()
    if direct.status_code == 202:  # a UTF-8 byte order mark: json.loads reads past it
        a, b = ({k: v for k, v in x.items() if k not in VARYING} for x in (a, b))
    assert a == b


@pytest.mark.parametrize("payload", [email(), {**email(), "reference": "a\u0000b"}, {"to": 1}])
def test_an_unknown_key_is_refused_first_alike(client, payload) -> None:
    bad = {"Authorization": "Bearer nope"}
    direct = _post(client, bad, payload, DIRECT)
    declared = _post(client, bad, payload, DECLARED)
    assert direct.status_code == declared.status_code == 401
    assert direct.json() == declared.json()


def test_an_idempotent_replay_says_so_on_the_direct_path(client, auth) -> None:
    first = _post(client, auth, email(), DIRECT, **{"Idempotency-Key": "k-1"})
    again = _post(client, auth, email(), DIRECT, **{"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == {**first.json(), "status": again.json()["status"]}
    too_long = _post(client, auth, email(), DIRECT, **{"Idempotency-Key": "k" * 256})
    assert (
        too_long.status_code
        == _post(client, auth, email(), DECLARED, **{"Idempotency-Key": "k" * 256}).status_code
        == 422
    )


def _post_batch(client: Any, auth: dict[str, str], payload: Any, content_type: str):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        "/v1/notifications/batch", content=body, headers={**auth, "Content-Type": content_type}
    )


def _results(response: Any) -> Any:
    body = response.json()
    for result in body.get("results", ()):
        result.pop("id", None)
    return body


@pytest.mark.parametrize(
    "items",
    [
        [email(to=f"user{i}@example.com") for i in range(5)] + [sms(), push()],
        [email(), {**email(), "to": "nope"}, {"channel": "fax"}, {**sms(), "body": "a\u0000"}],
        [{**email(), "idempotency_key": "own-1"}, email()],
        [{**email(), "to": f"user{i}@example.com"} for i in range(1001)],
    ],
)
def test_batches_are_answered_alike_on_both_paths(client, auth, items) -> None:
    direct = _post_batch(client, auth, {"notifications": items}, DIRECT)
    declared = _post_batch(client, auth, {"notifications": items}, DECLARED)
    assert direct.status_code == declared.status_code
    if "idempotency_key" in items[0]:  # the declared run replays the direct run's keyed item
        assert declared.json()["results"][0]["replayed"] is True
        return
    assert _results(direct) == _results(declared)


@pytest.mark.parametrize(
    "body", [b"", b"[]", b'{"notifications": []}', b'{"notifications": [1]}', b"{"]
)
def test_malformed_batches_get_the_declared_endpoints_answer(client, auth, body: bytes) -> None:
    direct = _post_batch(client, auth, body, DIRECT)
    declared = _post_batch(client, auth, body, DECLARED)
    assert direct.status_code == declared.status_code
    assert direct.json() == declared.json()


def test_the_send_paths_are_answered_in_front_of_the_stack(client, auth) -> None:
    """The application's outermost callable serves the two send paths itself, inside our
    middlewares: the caller's request id comes back and the request is counted under the route,
    as the declared path does."""
    from notifier import metrics
    from notifier.api.direct_route import DirectEntry

    entry = client.app.middleware_stack
    assert isinstance(entry, DirectEntry)
    assert set(entry.routes) == {"/v1/notifications", "/v1/notifications/batch"}
    assert entry.below is not None  # the stack below our middlewares was found

    def counted() -> float:
        sample = metrics.HTTP_REQUESTS.labels("/v1/notifications", "POST", "202")
        return sample._value.get()

    before = counted()
    for content_type in (DIRECT, DECLARED):
        answer = _post(client, auth, email(), content_type, **{"X-Request-ID": "req-42"})
        assert answer.status_code == 202
        assert answer.headers["x-request-id"] == "req-42"
    assert counted() == before + 2
    too_large = _post(client, auth, {**email(), "body": "x" * 2_000_000}, DIRECT)
    assert too_large.status_code == 413
    assert (
        too_large.json()["error"]["code"]
        == _post(client, auth, {**email(), "body": "x" * 2_000_000}, DECLARED).json()["error"][
            "code"
        ]
    )


def test_the_direct_path_reads_the_first_of_each_header_as_starlette_does() -> None:
    from starlette.requests import Request

    from notifier.api.direct_route import headers_named

    raw = [
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer first"),
        (b"x-other", b"1"),
        (b"authorization", b"Bearer second"),
        (b"idempotency-key", "caf\u00e9".encode("latin-1")),
    ]
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": raw})
    names = frozenset({b"content-type", b"authorization", b"idempotency-key", b"absent"})
    found = headers_named(request.scope, names)
    assert found == {
        name: request.headers[name.decode()] for name in names if name.decode() in request.headers
    }
    assert found[b"authorization"] == "Bearer first" and b"absent" not in found


def test_an_empty_idempotency_key_gets_the_declared_endpoints_answer(client, auth) -> None:
    direct = _post(client, auth, email(), DIRECT, **{"Idempotency-Key": ""})
    declared = _post(client, auth, email(), DECLARED, **{"Idempotency-Key": ""})
    assert direct.status_code == declared.status_code == 422
    assert direct.json() == declared.json()
