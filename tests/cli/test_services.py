"""``notifier services`` and ``notifier keys create --service/--type``: the same rules as the
admin API, clear refusals with exit 2, and today's ``keys create`` unchanged."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from notifier.cli import app


@pytest.fixture
def run(monkeypatch, tmp_path):
    for name in ("NOTIFIER_DATA_DIR", "NOTIFIER_DATABASE_URL", "NOTIFIER_PROVIDERS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOTIFIER_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_create_update_allow_show(run):
    assert run("services", "create", "--name", "billing").exit_code == 0
    listed = json.loads(run("services", "list", "--format", "json").stdout)
    assert [(s["name"], s["trial"]) for s in listed] == [("billing", True), ("default", False)]
    updated = run(
        "services", "update", "billing", "--no-trial",
        "--sender", "email.transactional:from_address=billing@example.com",
        "--sender", "email.transactional:reply_to=help@example.com",
        "--chain", "email.transactional=outbox",
        "--daily-quota", "sms.promotional=500",
        "--rate-limit", "sms.promotional=5/second",
        "--retention-days", "3",
        "--callback-url", "https://billing.example.com/hooks",
    )  # fmt: skip
    assert updated.exit_code == 0, updated.output
    assert updated.stdout.strip().startswith("whsec_")  # the secret, alone on stdout, once
    assert run("services", "allow", "billing", "+44 7911 123456").exit_code == 0
    shown = json.loads(run("services", "show", "billing").stdout)
    assert shown["trial"] is False and shown["retention_days"] == 3
    assert shown["senders"] == {
        "email.transactional": {
            "from_address": "billing@example.com",
            "reply_to": "help@example.com",
        }
    }
    assert shown["daily_quotas"] == {"sms.promotional": 500}
    assert shown["allowed_recipients"] == [
        {"id": 1, "channel": "sms", "recipient": "+447911123456"}
    ]
    # one lane cleared, the others kept
    run("services", "update", "billing", "--daily-quota", "sms.promotional=")
    assert json.loads(run("services", "show", "billing").stdout)["daily_quotas"] == {}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("services", "create", "--name", "Billing"), "lower-case"),
        (("services", "create", "--name", "default"), "exists already"),
        (("services", "update", "nope", "--no-trial"), "no service"),
        (("services", "update", "default", "--chain", "sms.promotional=twilio"), "no provider"),
        (("services", "update", "default", "--retention-days", "99"), "longer than"),
        (("services", "update", "default", "--daily-quota", "sms.promotional=many"), "invalid"),
        (("services", "update", "default", "--sender", "sms.promotional"), "LANE:FIELD=VALUE"),
        (("services", "update", "default", "--callback-url", "ftp://x"), "http(s)"),
        (("services", "allow", "default", "not-an-address@"), "address"),
        (("keys", "create", "--name", "ci", "--service", "nope"), "no service"),
        (("keys", "create", "--name", "ci", "--type", "free"), "unknown key type"),
    ],
)
def test_refusals_exit_2_with_the_reason(run, args, says):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_keys_create_with_a_service_and_a_type_and_without(run):
    run("services", "create", "--name", "billing")
    assert (
        run("keys", "create", "--name", "ci", "--service", "billing", "--type", "test").exit_code
        == 0
    )
    assert run("keys", "create", "--name", "today").exit_code == 0
    keys = {k["name"]: k for k in json.loads(run("keys", "list", "--format", "json").stdout)}
    assert (keys["ci"]["service"], keys["ci"]["type"]) == ("billing", "test")
    assert (keys["today"]["service"], keys["today"]["type"]) == ("default", "live")


def test_audiences_import_into_a_services_audience(run, tmp_path):
    from notifier.campaigns.models import Audience, Contact
    from notifier.cli_common import load_settings
    from notifier.db.session import make_engine, make_sessionmaker

    assert run("services", "create", "--name", "growth").exit_code == 0
    csv = tmp_path / "people.csv"
    csv.write_text("key,email,email_consent\nada,ada@example.com,yes\n")
    assert (
        run("audiences", "import", str(csv), "--audience", "vip", "--service", "growth").exit_code
        == 0
    )
    assert run("audiences", "import", str(csv), "--audience", "vip").exit_code == 0  # default's
    refused = run("audiences", "import", str(csv), "--audience", "vip", "--service", "nobody")
    assert refused.exit_code == 2 and "no service 'nobody'" in refused.output
    engine = make_engine(load_settings().database_url)
    with make_sessionmaker(engine)() as session:
        services = {
            s["name"]: s["id"]
            for s in json.loads(run("services", "list", "--format", "json").stdout)
        }
        audiences = {(a.service_id, a.name) for a in session.query(Audience)}
        contacts = sorted(c.service_id for c in session.query(Contact))
    engine.dispose()
    assert audiences == {(services["growth"], "vip"), (services["default"], "vip")}
    assert contacts == sorted([services["growth"], services["default"]])  # one each: own consent
