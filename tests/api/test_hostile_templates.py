"""Templates a hostile caller sends: every one a 422 naming the field, none holding the API.

Measured from outside: answers and their timing through the real app, stored rows counted."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from notifier.db.models import Notification
from tests.factories import email, push, sms

EXPENSIVE = [
    "{{ 'a' * 10**9 }}",
    "{{ (9**(9**8)) % 7 }}",
    "{{ range(10**9)|list }}",
    "{{ 10**5000 }}",
    "{{ 1/0 }}",
    "{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}",
    "{% include 'other' %}",
    "{% extends 'base' %}",
    "{% import 'macros' as m %}{{ m.x }}",
    "{% from 'macros' import x %}{{ x }}",
    "{{ 'a'.ljust(10**9) }}",
    "{{ '%999999999d' % 1 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}"
    "{% endfor %}{{ ns.x }}",
]


def stored(runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Notification))


@pytest.mark.parametrize("source", EXPENSIVE)
def test_expensive_or_forbidden_template_is_a_quick_422_naming_the_field(
    client, auth, runtime, source
):
    started = time.perf_counter()
    response = client.post("/v1/notifications", json=email(body=source), headers=auth)
    elapsed = time.perf_counter() - started
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] in ("template_error", "body_too_long")
    assert error["details"][0]["field"] == "body"
    assert elapsed < 3.0  # bounded by the render deadline (0.25 s) plus a worker's start
    assert stored(runtime) == 0


@pytest.mark.parametrize(("field", "times"), [("subject", 600), ("html", 300_000)])
def test_every_template_field_is_bounded_not_only_the_body(client, auth, field, times):
    response = client.post(
        "/v1/notifications", json=email(**{field: f"{{{{ 'ab' * {times} }}}}"}), headers=auth
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == field


def test_push_title_and_data_are_bounded(client, auth):
    title = client.post(
        "/v1/notifications", json=push(title="{{ name * 501 }}", data={"name": "x"}), headers=auth
    )
    assert title.status_code == 422 and title.json()["error"]["details"][0]["field"] == "title"
    data = client.post(
        "/v1/notifications", json=push(title="Hi", data={"name": "x" * 5000}), headers=auth
    )
    assert data.status_code == 422 and data.json()["error"]["details"][0]["field"] == "data"


def test_batch_items_with_bad_templates_fail_alone(client, auth, runtime):
    items = [
        email(),
        email(body="{{ 1/0 }}"),
        sms(body="{{ 10**5000 }}"),
        email(body="{% include 'x' %}"),
        sms(),
    ]
    response = client.post("/v1/notifications/batch", json={"notifications": items}, headers=auth)
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r.get("error", {}).get("code") for r in results] == [
        None,
        "template_error",
        "template_error",
        "template_error",
        None,
    ]
    assert all(r["error"]["details"][0]["field"] == "body" for r in results[1:4])
    assert stored(runtime) == 2


def test_non_plain_template_renders_in_a_worker_and_plain_ones_still_work(client, auth):
    body = "{% for item in items %}{{ loop.index }}. {{ item|upper }}\n{% endfor %}"
    response = client.post(
        "/v1/notifications", json=email(body=body, data={"items": ["tea", "cake"]}), headers=auth
    )
    assert response.status_code == 202, response.text
    assert response.json()["content"]["body"] == "1. TEA\n2. CAKE\n"


def test_expensive_templates_do_not_hold_other_callers(client, auth, runtime):
    """While two connections keep the renderers busy until their deadline, a plain request is
    answered at once: the event loop is never blocked by rendering. The hostile key gets 422s
    (killed at the deadline) and 429s (it already holds its share of the renderers)."""
    client.post("/v1/notifications", json=email(), headers=auth)  # warm: key cached, pool started
    slow = email(
        body="{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    )
    stop = time.monotonic() + 3
    hostile_answers: list[int] = []

    def hostile() -> None:
        while time.monotonic() < stop:
            hostile_answers.append(
                client.post("/v1/notifications", json=slow, headers=auth).status_code
            )

    threads = [threading.Thread(target=hostile) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    latencies = []
    while time.monotonic() < stop - 0.2:
        started = time.perf_counter()
        assert client.post("/v1/notifications", json=email(), headers=auth).status_code == 202
        latencies.append(time.perf_counter() - started)
    for thread in threads:
        thread.join()
    assert 422 in hostile_answers and set(hostile_answers) <= {422, 429}  # 429: its share is busy
    assert len(latencies) >= 10
    latencies.sort()
    # rendered on the event loop, each hostile render would hold every request for its whole
    # run (seconds, before the bounds); now a plain request waits for none of it
    assert latencies[len(latencies) // 2] < 0.1, latencies
    assert latencies[-1] < 1.0, latencies


def test_one_key_holds_at_most_half_of_the_renderers(runtime):
    from notifier.errors import ErrorCode, NotifierError
    from notifier.render_pool import RenderPool
    from notifier.rendering import Job

    pool = RenderPool(size=2, timeout=1.0)
    slow = Job(
        {
            "body": "{% for i in range(100000) %}{% for j in range(100000) %}"
            "{% endfor %}{% endfor %}"
        },
        {},
        None,
        {},
    )
    outcomes: list[str] = []

    def render(owner: str) -> None:
        try:
            pool.run(slow, owner=owner)
        except NotifierError as e:
            outcomes.append(f"{owner}:{e.code}")

    first = threading.Thread(target=render, args=("a",))
    first.start()
    time.sleep(0.2)
    render("a")  # a second one for the same key, while its first is running
    other = threading.Thread(target=render, args=("b",))
    other.start()
    first.join()
    other.join()
    pool.close()
    assert sorted(outcomes) == sorted(
        [
            f"a:{ErrorCode.TEMPLATE_ERROR}",
            f"a:{ErrorCode.RATE_LIMITED}",
            f"b:{ErrorCode.TEMPLATE_ERROR}",
        ]
    )
