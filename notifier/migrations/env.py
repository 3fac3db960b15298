"""Alembic environment. The database URL comes from the caller (``notifier db upgrade``) or
from settings; the target metadata is our models'."""

from __future__ import annotations

from alembic import context
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from notifier.db.all_models import Base
from notifier.db.session import make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from notifier.config import Settings

        url = Settings().database_url
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def _check_references(connection: Connection, when: str) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"foreign keys broken {when}: {broken[:10]}")


def run_migrations_online() -> None:
    engine = make_engine(_url(), pool_size=1, pooler=config.attributes.get("pooler"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a constraint by rebuilding the table (batch mode: copy, drop,
            # rename); with foreign keys enforced, dropping a table others refer to fails. So
            # migrations run with them off (a pragma that only takes effect outside a
            # transaction), and every reference is checked before and after, when there is
            # something to migrate (the check reads every table). pysqlite runs DDL outside a
            # transaction, so only the check before can leave the database as it was.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        heads = set(ScriptDirectory.from_config(config).get_heads())
        with context.begin_transaction():
            pending = sqlite and set(context.get_context().get_current_heads()) != heads
            if pending:
                _check_references(connection, "before migrating (nothing was changed)")
            context.run_migrations()
            if pending:
                _check_references(connection, "after migrating")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
