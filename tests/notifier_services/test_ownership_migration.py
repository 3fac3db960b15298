"""Migration 0015_service_ownership on a database with rows in every table it touches, on
SQLite and PostgreSQL (partitioned there): every row keeps its service, a contact in two
services' audiences is split into one contact per service, names become unique per service,
``service_id`` is required, and the downgrade refuses while two services share a name, then
gives the schema back with every row still there."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from notifier.db.migrate import alembic_config
from notifier.db.session import make_engine
from tests.factories import seed
from tests.notifier_services.test_migration import BEFORE, DEFAULT, NOW, _count, _seed

OTHER = "11111111-1111-4111-8111-111111111111"
REQUIRED = ("notifications", "templates", "audiences", "campaigns", "contacts")


def _seed_services(engine: Engine) -> None:
    """At 0013: a second service with its own audience; contact 1 is a member of the default
    service's audience and of the other's, contact 2 of none."""
    with engine.begin() as c:
        seed(
            c,
            "services",
            dict(
                id=OTHER,
                name="growth",
                trial=False,
                created_at=NOW,
                updated_at=NOW,
                senders={},
                provider_chains={},
                rate_limits={},
                daily_quotas={},
            ),
        )
        seed(c, "audiences", dict(id="a2", name="vip", service_id=OTHER, created_at=NOW))
        for key in ("alice", "bob"):
            seed(
                c,
                "contacts",
                dict(
                    key=key,
                    email=f"{key}@example.com",
                    attributes={"plan": "pro"},
                    push_tokens=[],
                    email_consent_at=NOW,
                    created_at=NOW,
                    updated_at=NOW,
                ),
            )
        alice = c.execute(text("SELECT id FROM contacts WHERE key = 'alice'")).scalar_one()
        for audience in ("a1", "a2"):
            seed(
                c,
                "audience_members",
                dict(audience_id=audience, contact_id=alice, created_at=NOW),
            )


def _members(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT m.audience_id, k.key, k.service_id FROM audience_members m "
                "JOIN contacts k ON k.id = m.contact_id ORDER BY m.audience_id"
            )
        )
        return [tuple(r) for r in rows]


def _walk(url: str) -> None:
    config = alembic_config(url)
    for head in BEFORE:
        command.upgrade(config, head)
    engine = make_engine(url)
    try:
        _seed(engine)
        command.upgrade(config, "0014_staff_services")
        _seed_services(engine)
        counts = {t: _count(engine, t) for t in (*REQUIRED, "audience_members", "suppressions")}
        command.upgrade(config, "0015_service_ownership")
        inspector = inspect(engine)
        for table in REQUIRED:
            column = next(c for c in inspector.get_columns(table) if c["name"] == "service_id")
            assert column["nullable"] is False, table
        with engine.connect() as c:
            for table in ("notifications", "templates", "campaigns"):
                assert c.execute(text(f"SELECT service_id FROM {table}")).scalars().all() == [  # noqa: S608
                    DEFAULT
                ], table
            owners = c.execute(text("SELECT id, service_id FROM audiences ORDER BY id")).all()
            assert [tuple(r) for r in owners] == [("a1", DEFAULT), ("a2", OTHER)]
            contacts = c.execute(
                text("SELECT key, service_id, attributes FROM contacts ORDER BY key, service_id")
            ).all()
            assert [(k, s) for k, s, _ in contacts] == [
                ("alice", DEFAULT),
                ("alice", OTHER),
                ("bob", DEFAULT),
            ]
            assert len({str(a) for _, _, a in contacts[:2]}) == 1  # the copy has the same fields
            assert c.execute(text("SELECT test FROM campaigns")).scalars().all() in ([False], [0])
            # suppressions untouched: still nullable, global ones still NULL
            assert c.execute(
                text("SELECT count(*) FROM suppressions WHERE service_id IS NULL")
            ).scalar() == (3)
        assert _members(engine) == [("a1", "alice", DEFAULT), ("a2", "alice", OTHER)]
        assert _count(engine, "contacts") == counts["contacts"] + 1
        with engine.begin() as c:  # the other service may now have its own "receipt"
            seed(
                c,
                "templates",
                dict(
                    id="t2",
                    service_id=OTHER,
                    name="receipt",
                    channel="sms",
                    latest_version=1,
                    created_at=NOW,
                    updated_at=NOW,
                ),
            )
        with pytest.raises(IntegrityError), engine.begin() as c:  # but not a second one
            seed(
                c,
                "templates",
                dict(
                    id="t3",
                    service_id=OTHER,
                    name="receipt",
                    channel="sms",
                    latest_version=1,
                    created_at=NOW,
                    updated_at=NOW,
                ),
            )
        with engine.begin() as c:  # code that names no service: the default one
            seed(c, "audiences", dict(id="a3", name="later", created_at=NOW))
            assert c.execute(text("SELECT service_id FROM audiences WHERE id = 'a3'")).scalar() == (
                DEFAULT
            )
            c.execute(text("DELETE FROM audiences WHERE id = 'a3'"))

        with pytest.raises(RuntimeError, match="used by more than one service"):
            command.downgrade(config, "0014_staff_services")
        with engine.begin() as c:  # what the old schema cannot hold goes first
            c.execute(text("DELETE FROM templates WHERE id = 't2'"))
            c.execute(text("DELETE FROM audience_members WHERE audience_id = 'a2'"))
            c.execute(text(f"DELETE FROM contacts WHERE service_id = '{OTHER}'"))  # noqa: S608
        command.downgrade(config, "0014_staff_services")
        inspector = inspect(engine)
        assert "service_id" not in {c["name"] for c in inspector.get_columns("contacts")}
        assert "test" not in {c["name"] for c in inspector.get_columns("campaigns")}
        for table in ("notifications", "templates", "audiences", "campaigns"):
            column = next(c for c in inspector.get_columns(table) if c["name"] == "service_id")
            assert column["nullable"] is True, table
        after = {t: _count(engine, t) for t in counts}
        assert after == {**counts, "audience_members": counts["audience_members"] - 1}
        command.upgrade(config, "heads")  # and forward again
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_forward_with_data_and_back(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        _walk(f"sqlite:///{tmp_path / 'm.db'}")
        return
    from tests.services import fresh_postgres_database

    with fresh_postgres_database() as url:
        _walk(url)


def test_sqlite_migrations_refuse_to_commit_broken_references(tmp_path: Path) -> None:
    """SQLite migrations run with foreign keys off (a table rebuild drops a table others refer
    to) and check every reference first: a membership of a contact that does not exist stops
    the upgrade before it changes anything."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0014_staff_services")
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            c.exec_driver_sql("PRAGMA foreign_keys=OFF")
            c.commit()
            seed(c, "audiences", dict(id="a1", name="news", created_at=NOW))
            seed(c, "audience_members", dict(audience_id="a1", contact_id=999, created_at=NOW))
            c.commit()
        with pytest.raises(RuntimeError, match="foreign keys broken"):
            command.upgrade(config, "0015_service_ownership")
        with engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
                "0014_staff_services"
            ]
            assert "test" not in {col["name"] for col in inspect(engine).get_columns("campaigns")}
    finally:
        engine.dispose()
