"""``notifier keys``: options validated with clear errors, a readable list, one data directory
found the same way from any working directory, and help that says what every option takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from notifier.cli import app


@pytest.fixture
def run(monkeypatch, tmp_path):
    for name in ("NOTIFIER_DATA_DIR", "NOTIFIER_DATABASE_URL", "NOTIFIER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOTIFIER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "80")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--rate-limit", "lots", "not a rate"),
        ("--rate-limit", "0/second", "positive"),
        ("--lanes", "sms.fast", "unknown lanes"),
        ("--scopes", "everything", "unknown scopes"),
        ("--scopes", ",", "unknown scopes"),
    ],
)
def test_create_refuses_bad_options_with_exit_2_and_stores_nothing(run, option, value, says):
    result = run("keys", "create", "--name", "billing", option, value)
    assert result.exit_code == 2
    assert says in result.output
    listed = run("keys", "list", "--format", "json")
    assert json.loads(listed.stdout) == []


def test_list_at_80_columns_shows_whole_ids_and_prefixes(run):
    created = run(
        "keys",
        "create",
        "--name",
        "a-rather-long-name-for-a-key",
        "--scopes",
        "notifications:send,notifications:read,support:read,campaigns:manage",
        "--lanes",
        "sms.transactional,email.transactional",
        "--rate-limit",
        "100/second",
    )
    assert created.exit_code == 0, created.output
    [key] = json.loads(run("keys", "list", "--format", "json").stdout)
    assert key["rate_limit"] == "100/second" and key["lanes"] == [
        "sms.transactional",
        "email.transactional",
    ]
    table = run("keys", "list").stdout
    assert key["id"] in table and key["prefix"] in table
    assert max(len(line) for line in table.splitlines()) <= 80
    revoked = run("keys", "revoke", key["prefix"])
    assert revoked.exit_code == 0 and key["id"] in revoked.output


def test_the_data_directory_is_the_same_from_any_working_directory(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("keys", "create", "--name", "one")
    assert f"database sqlite:///{tmp_path / 'home' / '.notifier' / 'notifier.db'}" in result.output
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert [k["name"] for k in json.loads(run("keys", "list", "--format", "json").stdout)] == [
        "one"
    ]


def test_without_notifier_home_the_nearest_data_directory_above_is_used(run, tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFIER_HOME")
    project = tmp_path / "project"
    (project / ".notifier").mkdir(parents=True)
    monkeypatch.chdir(project)
    run("keys", "create", "--name", "top")
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    result = run("keys", "list", "--format", "json")
    assert [k["name"] for k in json.loads(result.stdout)] == ["top"]
    assert str(project / ".notifier" / "notifier.db") in result.stderr


@pytest.mark.parametrize("command", [("api",), ("keys", "create"), ("keys", "list"), ("worker",)])
def test_help_labels_every_option_and_shows_its_default(run, command):
    text = run(*command, "--help").output
    assert "<str>" not in text and "<int>" not in text and "<bool>" not in text
    if command == ("api",):
        assert "--host HOST" in text and "127.0.0.1" in text and "8000" in text


def test_discovery_finds_a_checkout_root(tmp_path: Path) -> None:
    from notifier.home import discover_data_dir

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "notifier"\n')
    (tmp_path / "docs").mkdir()
    assert discover_data_dir(tmp_path / "docs") == tmp_path / ".notifier"
