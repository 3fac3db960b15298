"""Schema changes through Alembic, driven from code (``notifier db upgrade``, ``notifier dev``).

Every upgrade ends by making the time partitions ahead (``notifier/db/partitions.py``), so a
fresh or long-idle PostgreSQL database has today's and the coming days' partitions before the
first row arrives, whether or not beat has run yet.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import ForeignKeyConstraint, SchemaItem

from notifier.db import partitions
from notifier.db.models import utcnow
from notifier.db.session import DatabasePooler, make_engine

log = logging.getLogger("notifier.migrate")
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def include_object(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    """What Alembic compares with the models: not sqlalchemy-celery-beat's ``celery_*`` tables
    (it creates and owns them), not the time partitions (each is a table on PostgreSQL, made by
    ``notifier/db/partitions.py``, not by a migration), and not the foreign keys to a partitioned
    table, which exist on SQLite only (why: ``notifier/db/partitions.py``)."""
    if type_ == "table" and name and (name.startswith("celery_") or partitions.is_partition(name)):
        return False
    return not (
        type_ == "foreign_key_constraint"
        and isinstance(obj, ForeignKeyConstraint)
        and obj.referred_table.name in partitions.PARTITIONED
    )


def alembic_config(
    url: str, pooler: DatabasePooler | None = None, layout: partitions.Layout | None = None
) -> Config:
    """``pooler`` unset: as ``NOTIFIER_DATABASE_POOLER`` says (notifier/db/session.py);
    ``layout``: the partitions migration 0009 makes (unset: as the settings say)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    config.attributes["pooler"] = pooler
    config.attributes["partition_layout"] = layout or _configured_layout()
    return config


def upgrade(
    url: str,
    revision: str = "heads",
    pooler: DatabasePooler | None = None,
    layout: partitions.Layout | None = None,
) -> None:
    """Migrate to ``revision``, then make the partitions ahead (PostgreSQL, once partitioned)."""
    layout = layout or _configured_layout()
    command.upgrade(alembic_config(url, pooler, layout), revision)
    if not url.startswith("postgresql"):
        return
    engine = make_engine(url, pool_size=1, pooler=pooler)
    try:
        with engine.begin() as connection:
            partitions.prepare(connection, layout, utcnow())
    except OperationalError as e:  # another run held the tables past the lock timeout
        log.warning("partitions.prepare_postponed", extra={"error": str(e)})
    finally:
        engine.dispose()


def _configured_layout() -> partitions.Layout:
    """``NOTIFIER_PARTITION_DAYS`` and ``NOTIFIER_PARTITION_AHEAD_DAYS``, for the callers that
    give only a URL (as :func:`notifier.db.session.configured_pooler` does for the pooler)."""
    from notifier.config import Settings

    return Settings().partition_layout


def revision(url: str, message: str) -> None:
    command.revision(alembic_config(url), message=message, autogenerate=True)
