"""Things that must stay in step: README error codes, migrations and models, lanes and queues."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from notifier.db.all_models import Base
from notifier.db.migrate import include_object, upgrade
from notifier.db.session import make_engine
from notifier.errors import HTTP_STATUS, ErrorCode
from notifier.tasks import ALL_QUEUES
from providers.interface import Lane

ROOT = Path(__file__).resolve().parents[2]


def test_readme_documents_every_error_code_with_its_status() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", readme, flags=re.MULTILINE))
    assert documented == {code.value: str(HTTP_STATUS[code]) for code in ErrorCode}


def test_every_lane_is_a_queue() -> None:
    assert {lane.queue for lane in Lane} <= set(ALL_QUEUES)


def _diff(url: str) -> list:
    upgrade(url)
    engine = make_engine(url)  # as the product's: behind PgBouncer it prepares nothing
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    assert _diff(f"sqlite:///{tmp_path / 'm.db'}") == []


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgresql() -> None:
    from tests.services import fresh_postgres_database

    with fresh_postgres_database() as url:
        assert _diff(url) == []
