"""Schema changes through Alembic, driven from code (``notifier db upgrade``, ``notifier dev``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.schema import SchemaItem

from notifier.db.session import DatabasePooler

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def include_object(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    """sqlalchemy-celery-beat creates and owns its ``celery_*`` tables: not ours to migrate."""
    return not (type_ == "table" and name and name.startswith("celery_"))


def alembic_config(url: str, pooler: DatabasePooler | None = None) -> Config:
    """``pooler`` unset: as ``NOTIFIER_DATABASE_POOLER`` says (notifier/db/session.py)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    config.attributes["pooler"] = pooler
    return config


def upgrade(url: str, revision: str = "heads", pooler: DatabasePooler | None = None) -> None:
    command.upgrade(alembic_config(url, pooler), revision)


def revision(url: str, message: str) -> None:
    command.revision(alembic_config(url), message=message, autogenerate=True)
