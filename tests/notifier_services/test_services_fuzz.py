"""Schemathesis over the /v1/services operations with a platform-admin key (the suite-wide
run in tests/api uses a key without ``services:manage``, which stops at 403): no server error,
no undocumented status, no body off its schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from notifier.api.app import create_app
from tests.factories import api_key

EXAMPLES = 15


def test_services_operations_answer_as_documented(runtime):  # type: ignore[no-untyped-def]
    app = create_app(runtime=runtime)
    key = api_key(runtime, "platform", scopes=["services:manage", "keys:manage"])
    headers = {"Authorization": f"Bearer {key}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(("/v1/services", "/v1/keys")):
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
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            failures.append(f"{operation.label}: {str(e)[:800]}")
    assert operations == 11
    assert not failures, "\n\n".join(failures)
