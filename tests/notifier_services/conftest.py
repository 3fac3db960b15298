"""Keys for the services tests: a platform admin (``services:manage``) and an ordinary key."""

from __future__ import annotations

import pytest

from tests.factories import api_key


@pytest.fixture
def platform_admin(runtime) -> dict[str, str]:
    key = api_key(runtime, "platform", scopes=["services:manage", "keys:manage"])
    return {"Authorization": f"Bearer {key}"}
