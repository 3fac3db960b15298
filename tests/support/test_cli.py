"""``notifier staff create``: the password from stdin, Argon2-hashed, then usable to sign in."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from notifier.api.app import create_app
from notifier.cli import app
from notifier.support.models import StaffAccount
from tests.support.console import sign_in


def test_staff_create_reads_the_password_from_stdin(runtime, settings, monkeypatch):
    monkeypatch.setenv("NOTIFIER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["staff", "create", "--email", "Ada@Example.com", "--role", "admin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with runtime.sessions() as s:
        account = s.scalars(select(StaffAccount)).one()
    assert (account.email, account.role) == ("ada@example.com", "admin")
    assert (
        account.password_hash.startswith("$argon2id$")
        and "long enough" not in account.password_hash
    )
    with TestClient(create_app(runtime=runtime)) as c:
        assert sign_in(c, "ada@example.com", "a long enough password").status_code == 303

    again = runner.invoke(
        app, ["staff", "create", "--email", "ada@example.com"], input="another password!\n"
    )
    assert again.exit_code == 2 and "already exists" in again.output
    short = runner.invoke(app, ["staff", "create", "--email", "bo@example.com"], input="short\n")
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    listed = runner.invoke(app, ["staff", "list"])
    assert "ada@example.com" in listed.output and "argon2" not in listed.output
