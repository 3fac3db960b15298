"""Receipts fixtures: SMS lanes on the Twilio fake, email lanes on moto's SES, a worker app, and
a local https SNS host with a signer whose certificate it serves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from notifier.config import Settings
from notifier.tasks import RECEIPTS
from tests.factories import make_settings
from tests.fakes.aws import MotoSes, SnsSigner
from tests.fakes.twilio_api import DEFAULT_AUTH_TOKEN, FakeTwilioApi
from tests.integration.providers_fakes import (  # noqa: F401 - fixtures
    moto_ses,
    moto_ses_server,
    secret_env,
    ses_block,
    twilio,
    twilio_block,
    write_providers_file,
)
from tests.receipts.sns_host import LocalSnsHost
from workers.app import create_worker_app

PUBLIC_URL = "https://notify.example.com"


@pytest.fixture
def settings(
    tmp_path: Path,
    twilio: FakeTwilioApi,  # noqa: F811
    moto_ses: MotoSes,  # noqa: F811
    secret_env: Mapping[str, str],  # noqa: F811
) -> Settings:
    providers_file = write_providers_file(
        tmp_path / "providers.toml",
        {"twilio-main": twilio_block(twilio), "ses-main": ses_block(moto_ses.endpoint_url)},
        {
            "sms.transactional": ["twilio-main"],
            "sms.promotional": ["twilio-main"],
            "email.transactional": ["ses-main"],
            "email.promotional": ["ses-main"],
        },
    )
    return make_settings(
        tmp_path,
        providers_file=providers_file,
        twilio_auth_token=DEFAULT_AUTH_TOKEN,
        public_url=PUBLIC_URL,
    )


@pytest.fixture
def worker_app(runtime: Any, settings: Settings) -> Iterator[Celery]:
    app = create_worker_app(settings, pool_size=5)
    with app.connection_for_write() as connection:  # the memory broker is process-wide:
        connection.SimpleQueue(RECEIPTS).clear()  # forget receipts other tests left queued
    yield app
    app.delivery.close()
    app.runtime.close()


@pytest.fixture(scope="module")
def sns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSnsHost]:
    with LocalSnsHost(tmp_path_factory.mktemp("sns-host")) as host:
        yield host


class LocalSigner:
    """Signs SNS messages with a certificate served by the local SNS host."""

    def __init__(self, signer: SnsSigner, host: LocalSnsHost) -> None:
        self.signer = signer
        self.host = host
        self.cert_url = host.publish(
            f"/SimpleNotificationService-{uuid.uuid4().hex}.pem", signer.certificate_pem
        )

    def notification(self, payload: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        return self.signer.sign(self.signer.notification(payload, **options), "1", self.cert_url)

    def subscription_confirmation(self) -> dict[str, Any]:
        arn = self.signer.topic_arn()
        token = uuid.uuid4().hex
        message = {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": arn,
            "Message": f"You have chosen to subscribe to the topic {arn}.",
            "SubscribeURL": self.host.url(
                f"/?Action=ConfirmSubscription&TopicArn={arn}&Token={token}"
            ),
            "Timestamp": "2026-01-15T10:00:00.000Z",
        }
        return self.signer.sign(message, "2", self.cert_url)


@pytest.fixture
def sns(
    sns_server: LocalSnsHost, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> LocalSigner:
    """SES events can arrive: the settings accept the local SNS host, httpx trusts its CA."""
    settings.sns_certificate_host_pattern = sns_server.host_pattern
    monkeypatch.setenv("SSL_CERT_FILE", str(sns_server.tls.ca_file))
    return LocalSigner(SnsSigner(region="eu-west-1"), sns_server)
