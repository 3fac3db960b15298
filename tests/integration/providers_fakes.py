"""The local fakes of every provider, started as pytest fixtures, and providers files for them.

Import the fixtures into a test module (or a conftest) by name. Each server fixture yields a
started fake and stops it afterwards; :func:`write_providers_file` writes the TOML file that
``NOTIFIER_PROVIDERS_FILE`` names, with every secret referenced through ``*_env`` (the
variables :data:`SECRET_ENV` lists; set them with ``monkeypatch``), never written in the file.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery import Celery

from notifier.config import Settings
from tests.fakes.apns_server import (
    ApnsFakeServer,
    Certificates,
    ProviderKey,
    make_certificates,
    make_provider_key,
)
from tests.fakes.aws import TEST_CREDENTIALS, MotoSes, SesApiFake
from tests.fakes.fcm_server import FcmFakeServer, ServiceAccount, make_service_account
from tests.fakes.smtp_server import FakeSmtpServer
from tests.fakes.sns import ACCESS_KEY_ID, SECRET_ACCESS_KEY, FakeSnsApi, MotoSns
from tests.fakes.twilio_api import DEFAULT_AUTH_TOKEN, FakeTwilioApi

SENDER = "notify@notifier.example"
SMTP_USER = "notifier"
SMTP_PASSWORD = "smtp-password-not-in-the-file"
TWILIO_TRANSACTIONAL_SERVICE = "MG" + "1" * 32
TWILIO_PROMOTIONAL_SERVICE = "MG" + "2" * 32
APNS_TOPIC = "com.example.notifier"

SECRET_ENV: Mapping[str, str] = {
    "TEST_SMTP_PASSWORD": SMTP_PASSWORD,
    "TEST_SES_SECRET": TEST_CREDENTIALS["aws_secret_access_key"],
    "TEST_TWILIO_TOKEN": DEFAULT_AUTH_TOKEN,
    "TEST_SNS_SECRET": SECRET_ACCESS_KEY,
}

Block = dict[str, Any]


def daytime_timezone() -> str:
    """A timezone where it is day now: promotional SMS and push wait out the recipient's quiet
    hours (21:00-08:00), and these tests send now."""
    now = datetime.now(UTC)
    for name in (
        "Europe/London",
        "Asia/Tokyo",
        "America/New_York",
        "Asia/Kolkata",
        "America/Los_Angeles",
        "Pacific/Auckland",
        "Asia/Dubai",
        "Pacific/Honolulu",
    ):
        if 9 <= now.astimezone(ZoneInfo(name)).hour < 20:
            return name
    raise AssertionError("no listed timezone has daytime now")


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- providers file


def write_providers_file(
    path: Path, providers: Mapping[str, Block], lanes: Mapping[str, Sequence[str]]
) -> Path:
    lines: list[str] = []
    for name, block in providers.items():
        lines.append(f'[providers."{name}"]')
        lines.extend(f"{key} = {_toml(value)}" for key, value in block.items())
        lines.append("")
    lines.append("[lanes]")
    lines.extend(f'"{lane}" = {_toml(list(names))}' for lane, names in lanes.items())
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


# --------------------------------------------------------------------------- blocks per kind


def smtp_block(server: FakeSmtpServer, **changes: Any) -> Block:
    assert server.tls_files is not None
    return {
        "type": "smtp",
        "host": server.host,
        "port": server.port,
        "tls": "starttls",
        "ca_file": str(server.tls_files.ca_file),
        "username": SMTP_USER,
        "password_env": "TEST_SMTP_PASSWORD",
        "from_address": SENDER,
        "timeout_seconds": 2,
        **changes,
    }


def ses_block(endpoint_url: str, **changes: Any) -> Block:
    return {
        "type": "ses",
        "region": "eu-west-1",
        "endpoint_url": endpoint_url,
        "access_key_id": TEST_CREDENTIALS["aws_access_key_id"],
        "secret_access_key_env": "TEST_SES_SECRET",
        "from_address": SENDER,
        "timeout_seconds": 2,
        **changes,
    }


def twilio_block(api: FakeTwilioApi, **changes: Any) -> Block:
    return {
        "type": "twilio",
        "account_sid": api.account_sid,
        "auth_token_env": "TEST_TWILIO_TOKEN",
        "transactional_messaging_service_sid": TWILIO_TRANSACTIONAL_SERVICE,
        "promotional_messaging_service_sid": TWILIO_PROMOTIONAL_SERVICE,
        "base_url": api.base_url,
        "status_callback_url": "https://notify.example.com/v1/receipts/twilio",
        "timeout_seconds": 2,
        **changes,
    }


def sns_block(endpoint_url: str, **changes: Any) -> Block:
    return {
        "type": "sns",
        "region": "eu-west-1",
        "endpoint_url": endpoint_url,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key_env": "TEST_SNS_SECRET",
        "timeout_seconds": 2,
        **changes,
    }


def fcm_block(push: FcmSetup, **changes: Any) -> Block:
    return {
        "type": "fcm",
        "service_account_file": str(push.account_file),
        "endpoint_base": push.server.endpoint_base,
        "timeout_seconds": 2,
        **changes,
    }


def apns_block(push: ApnsSetup, **changes: Any) -> Block:
    return {
        "type": "apns",
        "key_file": str(push.key_file),  # a secret file: read into the ``key`` option
        "key_id": push.key.key_id,
        "team_id": push.key.team_id,
        "topic": APNS_TOPIC,
        "host": push.server.host,
        "port": push.server.port,
        "ca_file": str(push.server.ca_file),
        "timeout_seconds": 2,
        **changes,
    }


# --------------------------------------------------------------------------- fixtures


@dataclass
class FcmSetup:
    server: FcmFakeServer
    account: ServiceAccount
    account_file: Path


@dataclass
class ApnsSetup:
    server: ApnsFakeServer
    key: ProviderKey
    key_file: Path


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> Mapping[str, str]:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    return SECRET_ENV


@pytest.fixture(scope="module")
def smtp_certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smtp-tls")


@pytest.fixture
def smtp(smtp_certificates: Path) -> Iterator[FakeSmtpServer]:
    server = FakeSmtpServer(
        tls="starttls", users={SMTP_USER: SMTP_PASSWORD}, certificate_dir=smtp_certificates
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def moto_ses_server() -> Iterator[MotoSes]:
    with MotoSes(region="eu-west-1") as moto:
        yield moto


@pytest.fixture
def moto_ses(moto_ses_server: MotoSes) -> Iterator[MotoSes]:
    moto_ses_server.verify_identity(SENDER)
    yield moto_ses_server


@pytest.fixture
def ses_api() -> Iterator[SesApiFake]:
    with SesApiFake() as fake:
        yield fake


@pytest.fixture
def twilio() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi() as api:
        yield api


@pytest.fixture(scope="module")
def moto_sns() -> Iterator[MotoSns]:
    with MotoSns() as server:
        yield server


@pytest.fixture
def sns_api() -> Iterator[FakeSnsApi]:
    with FakeSnsApi() as api:
        yield api


@pytest.fixture(scope="module")
def fcm_account() -> ServiceAccount:
    return make_service_account(project_id="notifier-test")


@pytest.fixture
def fcm(fcm_account: ServiceAccount, tmp_path: Path) -> Iterator[FcmSetup]:
    with FcmFakeServer(fcm_account) as server:
        account_file = tmp_path / "fcm-service-account.json"
        account_file.write_text(json.dumps(fcm_account.info_for(server.token_uri)))
        yield FcmSetup(server, fcm_account, account_file)


@pytest.fixture(scope="module")
def apns_key() -> ProviderKey:
    return make_provider_key()


@pytest.fixture(scope="module")
def apns_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("apns-tls"))


@pytest.fixture
def apns(
    apns_key: ProviderKey, apns_certificates: Certificates, tmp_path: Path
) -> Iterator[ApnsSetup]:
    with ApnsFakeServer(apns_key, apns_certificates) as server:
        yield ApnsSetup(server, apns_key, apns_key.write_p8(tmp_path / "AuthKey.p8"))


Build = Callable[[Mapping[str, Block], Mapping[str, Sequence[str]]], Celery]


@pytest.fixture
def build(settings: Settings, runtime: Any) -> Iterator[Build]:
    """Write the providers file named by the module's ``settings`` and build the worker app from
    it, through the real loader and entry points (closed after the test)."""
    from workers.app import create_worker_app

    made: list[Celery] = []

    def make(providers: Mapping[str, Block], lanes: Mapping[str, Sequence[str]]) -> Celery:
        assert settings.providers_file is not None
        write_providers_file(settings.providers_file, providers, lanes)
        app = create_worker_app(settings, pool_size=5)
        made.append(app)
        return app

    yield make
    for app in made:
        app.delivery.close()
        app.runtime.close()
