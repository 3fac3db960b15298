"""``notifier providers check``: the providers file validated, and with --connect each provider
reached over its real protocol (the local fakes) without sending anything."""

# ruff: noqa: F811 - the fixtures are imported from providers_fakes by name
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from notifier.cli import app
from tests.fakes.third_party_provider import install_distribution
from tests.integration.providers_fakes import (  # noqa: F401 - fixtures
    Block,
    apns,
    apns_block,
    apns_certificates,
    apns_key,
    closed_port,
    fcm,
    fcm_account,
    fcm_block,
    moto_sns,
    secret_env,
    ses_api,
    ses_block,
    smtp,
    smtp_block,
    smtp_certificates,
    sns_block,
    twilio,
    twilio_block,
    write_providers_file,
)

Check = Callable[..., Result]


@pytest.fixture
def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Check:
    """Write a providers file and run the command on it, in this process."""
    monkeypatch.setenv("NOTIFIER_ENV", "test")
    monkeypatch.setenv("NOTIFIER_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "providers.toml"
    monkeypatch.setenv("NOTIFIER_PROVIDERS_FILE", str(path))

    def run(
        providers: Mapping[str, Block], lanes: Mapping[str, Sequence[str]], *args: str
    ) -> Result:
        write_providers_file(path, providers, lanes)
        return CliRunner().invoke(app, ["providers", "check", *args])

    return run


def output(result: Result) -> str:
    return " ".join(result.output.split())  # stdout and stderr, as the operator sees them


def test_valid_file_is_ok_for_every_lane(check, secret_env, twilio, ses_api, smtp) -> None:
    result = check(
        {
            "ses-main": ses_block(ses_api.endpoint_url),
            "smtp-backup": smtp_block(smtp),
            "twilio-main": twilio_block(twilio),
        },
        {
            "email.transactional": ["ses-main", "smtp-backup"],
            "sms.transactional": ["twilio-main"],
            "sms.promotional": ["twilio-main"],
        },
    )

    assert result.exit_code == 0, output(result)
    text = output(result)
    for line in (
        "ok email.transactional ses-main (ses)",
        "ok email.transactional smtp-backup (smtp)",
        "ok sms.transactional twilio-main (twilio)",
        "ok sms.promotional twilio-main (twilio)",
    ):
        assert line in text
    assert twilio.requests == [] and ses_api.requests == [] and smtp.connections == 0


def test_every_providers_send_rate_is_shown(check, secret_env, twilio, ses_api, smtp) -> None:
    result = check(
        {
            "ses-main": ses_block(ses_api.endpoint_url),
            "smtp-backup": smtp_block(smtp),
            "twilio-main": twilio_block(twilio, rate_limit="30/second"),
        },
        {"email.transactional": ["ses-main", "smtp-backup"], "sms.transactional": ["twilio-main"]},
    )

    assert result.exit_code == 0, output(result)
    text = output(result)
    assert (
        "ses-main (ses)" in text and "send rate: 14/second (ses's default; set rate_limit" in text
    )
    assert "send rate: no shared send rate (the provider's own limits apply)" in text  # smtp
    assert "send rate: 30/second (configured)" in text


def test_missing_environment_secret_exits_2_naming_the_variable(
    check, secret_env, twilio, monkeypatch
) -> None:
    monkeypatch.delenv("TEST_TWILIO_TOKEN")

    result = check({"twilio-main": twilio_block(twilio)}, {"sms.transactional": ["twilio-main"]})

    assert result.exit_code == 2
    assert (
        "invalid provider configuration: provider 'twilio-main': environment variable "
        "TEST_TWILIO_TOKEN is not set" in output(result)
    )


def test_literal_secret_in_the_file_is_refused(check, secret_env, twilio) -> None:
    block = twilio_block(twilio)
    del block["auth_token_env"]
    block["auth_token"] = "written-in-the-file"

    result = check({"twilio-main": block}, {"sms.transactional": ["twilio-main"]})

    assert result.exit_code == 2
    text = output(result)
    assert "auth_token is a secret; use auth_token_env or auth_token_file" in text
    assert "written-in-the-file" not in text


def test_secret_from_a_file(check, secret_env, twilio, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TEST_TWILIO_TOKEN")
    secret = tmp_path / "twilio_token"
    secret.write_text(twilio.auth_token + "\n")
    block = twilio_block(twilio)
    del block["auth_token_env"]
    block["auth_token_file"] = str(secret)

    result = check({"twilio-main": block}, {"sms.transactional": ["twilio-main"]}, "--connect")

    assert result.exit_code == 0, output(result)


def test_unknown_provider_type_exits_2(check) -> None:
    result = check({"x": {"type": "carrier-pigeon"}}, {"sms.transactional": ["x"]})

    assert result.exit_code == 2
    assert "no provider type 'carrier-pigeon'" in output(result)


def test_connect_reaches_every_kind_of_provider(
    check, secret_env, twilio, ses_api, smtp, moto_sns, fcm, apns
) -> None:
    result = check(
        {
            "ses-main": ses_block(ses_api.endpoint_url),
            "smtp-main": smtp_block(smtp),
            "twilio-main": twilio_block(twilio),
            "sns-main": sns_block(moto_sns.endpoint_url),
            "fcm-main": fcm_block(fcm),
            "apns-main": apns_block(apns),
        },
        {
            "email.transactional": ["ses-main", "smtp-main"],
            "sms.transactional": ["twilio-main", "sns-main"],
            "push.transactional": ["fcm-main", "apns-main"],
        },
        "--connect",
    )

    assert result.exit_code == 0, output(result)
    assert output(result).count("ok ") == 6
    assert smtp.connections >= 1 and smtp.messages == []  # logged in, sent nothing
    assert [r.method for r in twilio.requests] == ["GET"]
    assert ses_api.sent_emails() == [] and len(ses_api.requests) == 1
    assert len(fcm.server.grants) == 1 and fcm.server.messages == []
    deadline = time.monotonic() + 5  # the fake counts the connection once its TLS handshake ends
    while apns.server.connections_made == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert apns.server.connections_made == 1 and apns.server.requests == []


@pytest.mark.parametrize("kind", ["smtp", "twilio", "apns"])
def test_connect_to_a_closed_port_fails_with_exit_1(
    check, secret_env, twilio, smtp, apns, kind
) -> None:
    port = closed_port()
    blocks = {
        "smtp": ("email.transactional", smtp_block(smtp, port=port)),
        "twilio": ("sms.transactional", twilio_block(twilio, base_url=f"http://127.0.0.1:{port}")),
        "apns": ("push.transactional", apns_block(apns, port=port)),
    }
    lane, block = blocks[kind]

    result = check({f"{kind}-main": block}, {lane: [f"{kind}-main"]}, "--connect")

    assert result.exit_code == 1
    assert f"FAIL {lane} {kind}-main ({kind}):" in output(result)
    assert check({f"{kind}-main": block}, {lane: [f"{kind}-main"]}).exit_code == 0  # no --connect


def test_third_party_provider_plugs_in_through_its_entry_point(tmp_path: Path) -> None:
    """A separate process, as an operator runs it: the plug-in is found through the metadata of
    an installed distribution, not by importing anything of ours by name."""
    plugins = install_distribution(tmp_path / "site")
    providers = write_providers_file(
        tmp_path / "providers.toml",
        {"pigeon-main": {"type": "pigeon", "loft": "rooftop"}},
        {"sms.transactional": ["pigeon-main"]},
    )
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(plugins), str(root)]),
        "NOTIFIER_ENV": "test",
        "NOTIFIER_DATA_DIR": str(tmp_path / "data"),
        "NOTIFIER_PROVIDERS_FILE": str(providers),
        "COLUMNS": "200",
    }

    done = subprocess.run(
        [sys.executable, "-m", "notifier.cli", "providers", "check", "--connect"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "ok    sms.transactional      pigeon-main (pigeon): loft rooftop (reachable)" in (
        done.stderr + done.stdout
    )


@pytest.mark.parametrize("kind", ["smtp", "ses", "twilio", "sns", "fcm", "apns"])
def test_a_non_numeric_timeout_exits_2_for_every_adapter(
    check, secret_env, smtp, ses_api, twilio, moto_sns, fcm, apns, kind
) -> None:
    """Every adapter reads its options through its declared schema (providers/options.py): a
    ``timeout_seconds = "ten"`` is a clear configuration error (exit 2), never a traceback."""
    blocks = {
        "smtp": ("email.transactional", smtp_block(smtp, timeout_seconds="ten")),
        "ses": ("email.transactional", ses_block(ses_api.endpoint_url, timeout_seconds="ten")),
        "twilio": ("sms.transactional", twilio_block(twilio, timeout_seconds="ten")),
        "sns": ("sms.transactional", sns_block(moto_sns.endpoint_url, timeout_seconds="ten")),
        "fcm": ("push.transactional", fcm_block(fcm, timeout_seconds="ten")),
        "apns": ("push.transactional", apns_block(apns, timeout_seconds="ten")),
    }
    lane, block = blocks[kind]

    result = check({f"{kind}-main": block}, {lane: [f"{kind}-main"]})

    assert result.exit_code == 2, output(result)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert (
        f"invalid provider configuration: provider '{kind}-main' ({kind}): "
        "timeout_seconds must be a positive number" in output(result)
    )
    assert "Traceback" not in output(result)
