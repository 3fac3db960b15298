"""Schemathesis over every operation of /openapi.json with a key holding every scope (the
admin scopes too, so the admin routes are exercised past their 403).

A bounded number of examples per operation keeps this under a minute; every response is checked
against the document: no server error, no undocumented status, no body violating its schema, no
undocumented header. Failures of all operations are collected and reported together."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from notifier.api.app import create_app
from tests.factories import ALL_SCOPES, api_key

EXAMPLES = 10
# schema-valid is not always acceptable: an address that is not an address, a template naming a
# missing value, body and template together are refused with a documented 422 by rules that JSON
# Schema cannot express, so "schema-valid data must be accepted" does not hold for this API
EXCLUDED = [positive_data_acceptance]
# health answers 503 by design when a dependency or delivery is down (here: no worker, no beat);
# their own tests (test_delivery_health, test_observability) check them
OPERATIONAL = frozenset({"/healthz", "/readyz", "/health/delivery"})


def test_every_operation_answers_as_documented(runtime):
    app = create_app(runtime=runtime)
    scopes = [*ALL_SCOPES, "keys:manage", "services:manage"]
    headers = {"Authorization": f"Bearer {api_key(runtime, 'schemathesis', scopes=scopes)}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if operation.path in OPERATIONAL:
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

        try:
            check()
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            failures.append(f"{operation.label}: {str(e)[:600]}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
