"""Alembic environment. The database URL comes from the caller (``notifier db upgrade``) or
from settings; the target metadata is our models'."""

from __future__ import annotations

from alembic import context

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


def run_migrations_online() -> None:
    engine = make_engine(_url(), pool_size=1, pooler=config.attributes.get("pooler"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a constraint by rebuilding the table (batch mode: copy, drop,
            # rename); with foreign keys enforced, dropping a table others refer to fails. So
            # migrations run with them off (a pragma that only takes effect outside a
            # transaction) and every reference is checked before the migrations commit.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:10]}")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
