"""Fixtures of the database tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.db.migrate import upgrade
from notifier.runtime import Runtime
from tests.factories import make_settings
from tests.services import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """A migrated runtime on SQLite, then on a fresh PostgreSQL database (the database tests run
    on both; this replaces the SQLite-only fixture of tests/conftest.py here)."""
    if request.param == "sqlite":
        settings = make_settings(tmp_path)
        upgrade(settings.database_url)
        built = Runtime.build(settings)
        yield built
        built.intake.committer.close()
        built.close()
        return
    with fresh_postgres_database() as url:
        upgrade(url)
        built = Runtime.build(make_settings(tmp_path, database_url=url))
        yield built
        built.intake.committer.close()
        built.close()
