"""Migration 0014_staff_services on a database with staff, sessions and audit rows, on SQLite
and PostgreSQL: support accounts join the default service, admins become platform admins, their
sessions still resume, audit rows of before belong to no service; the downgrade gives the
roles back, disables the staff of other services, and keeps every row."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from notifier.db.migrate import alembic_config
from notifier.db.models import utcnow
from notifier.db.session import make_engine, make_sessionmaker
from notifier.support import sessions
from tests.factories import seed
from tests.notifier_services.test_migration import NOW, _count

DEFAULT = "00000000-0000-4000-8000-000000000000"


def _seed(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            for sid, role in (("s-support", "support"), ("s-admin", "admin")):
                seed(
                    c,
                    "staff_accounts",
                    dict(
                        id=sid,
                        email=f"{sid}@example.com",
                        role=role,
                        password_hash="h",
                        created_at=NOW,
                    ),
                )
                seed(
                    c,
                    "staff_sessions",
                    dict(
                        id=f"digest-{sid}",
                        staff_id=sid,
                        csrf_token="c",
                        created_at=utcnow(),
                        last_seen_at=utcnow(),  # open: within the idle timeout
                        expires_at=utcnow() + timedelta(hours=1),
                    ),
                )
            seed(
                c,
                "support_audit",
                dict(at=NOW, actor_kind="staff", actor_id="s-admin", actor="a", action="search"),
            )
    finally:
        engine.dispose()


def _walk(url: str) -> None:
    config = alembic_config(url)
    command.upgrade(config, "0013_test_notifications")
    command.upgrade(config, "0007_console_operator")
    _seed(url)
    command.upgrade(config, "0014_staff_services")
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            accounts = c.execute(
                text("SELECT id, role, service_id FROM staff_accounts ORDER BY id")
            ).all()
            assert [tuple(a) for a in accounts] == [
                ("s-admin", "platform_admin", None),
                ("s-support", "support", DEFAULT),
            ]
            assert c.execute(text("SELECT service_id FROM support_audit")).scalars().all() == [None]
            seed(  # a billing support account, created after the upgrade
                c,
                "services",
                dict(
                    id="svc-b",
                    name="billing",
                    trial=False,
                    created_at=NOW,
                    updated_at=NOW,
                    senders={},
                    provider_chains={},
                    rate_limits={},
                    daily_quotas={},
                ),
            )
            seed(
                c,
                "staff_accounts",
                dict(
                    id="s-billing",
                    email="b@example.com",
                    role="support",
                    password_hash="h",
                    created_at=NOW,
                    service_id="svc-b",
                ),
            )
        assert "ix_support_audit_service_at" in {
            i["name"] for i in inspect(engine).get_indexes("support_audit")
        }
        # the sessions of before still resume, now with the account's scope
        with make_sessionmaker(engine)() as s:
            staff = sessions._resume_digest(s, "digest-s-admin")
            assert staff is not None and staff.is_platform_admin and staff.scope is None
            staff = sessions._resume_digest(s, "digest-s-support")
            assert staff is not None and staff.scope == DEFAULT
        command.downgrade(config, "0013_test_notifications")
        with engine.connect() as c:
            rows = c.execute(
                text("SELECT id, role, disabled_at IS NOT NULL FROM staff_accounts ORDER BY id")
            ).all()
        assert [tuple(r) for r in rows] == [
            ("s-admin", "admin", False),
            ("s-billing", "support", True),  # the old schema would show it every service
            ("s-support", "support", False),
        ]
        assert "service_id" not in {
            c["name"] for c in inspect(engine).get_columns("staff_accounts")
        }
        assert "service_id" not in {c["name"] for c in inspect(engine).get_columns("support_audit")}
        assert _count(engine, "support_audit") == 1 and _count(engine, "staff_sessions") == 2
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
