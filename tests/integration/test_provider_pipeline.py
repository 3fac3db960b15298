# ruff: noqa: F811 - the fixtures are imported from providers_fakes by name
"""The whole provider pipeline: API -> worker -> the real SDK of each provider -> its local fake.

Each test writes a providers TOML file (secrets through ``*_env``), builds the worker app with
``create_worker_app(settings)`` so the real loader and the ``notifier.providers`` entry points are
used, posts notifications through the API and delivers them. Then, for every provider kind, the
answers that matter: invalid recipient, throttled, 5xx, timeout after sending, refused connection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from notifier.config import Settings
from notifier.db.models import Notification, Suppression
from tests.factories import email, make_settings, push, sms
from tests.fakes.apns_server import ApnsAnswer
from tests.fakes.aws import AwsAnswer
from tests.fakes.fcm_server import FcmAnswer
from tests.fakes.sns import SnsAnswer
from tests.fakes.third_party_provider import PigeonProvider, install_distribution
from tests.fakes.twilio_api import TwilioAnswer
from tests.integration.providers_fakes import (  # noqa: F401 - fixtures
    APNS_TOPIC,
    SENDER,
    SMTP_USER,
    TWILIO_PROMOTIONAL_SERVICE,
    TWILIO_TRANSACTIONAL_SERVICE,
    Block,
    Build,
    apns,
    apns_block,
    apns_certificates,
    apns_key,
    build,
    closed_port,
    daytime_timezone,
    fcm,
    fcm_account,
    fcm_block,
    moto_ses,
    moto_ses_server,
    moto_sns,
    secret_env,
    ses_api,
    ses_block,
    smtp,
    smtp_block,
    smtp_certificates,
    sns_api,
    sns_block,
    twilio,
    twilio_block,
    write_providers_file,
)
from tests.notifications_api import post, timeline
from workers.delivery import deliver_ids

APNS_TOKEN = "ab" * 32
FCM_TOKEN = "fcm-device-token-0123456789"


@pytest.fixture
def settings(tmp_path: Path, secret_env: Mapping[str, str]) -> Settings:
    return make_settings(tmp_path, providers_file=tmp_path / "providers.toml")


def attempts(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in body["events"] if e["kind"] == "attempt"]


# --------------------------------------------------------------------------- every lane


def test_every_lane_delivers_through_its_real_sdk(
    client, auth, build, smtp, moto_ses, twilio, moto_sns, fcm, apns
) -> None:
    app = build(
        {
            "ses-main": ses_block(moto_ses.endpoint_url),
            "smtp-main": smtp_block(smtp),
            "twilio-main": twilio_block(twilio),
            "sns-backup": sns_block(moto_sns.endpoint_url),
            "apns-main": apns_block(apns),
            "fcm-main": fcm_block(fcm),
        },
        {
            "email.transactional": ["ses-main", "smtp-main"],
            "email.promotional": ["smtp-main", "ses-main"],
            "sms.transactional": ["twilio-main", "sns-backup"],
            "sms.promotional": ["twilio-main", "sns-backup"],
            "push.transactional": ["apns-main"],
            "push.promotional": ["fcm-main"],
        },
    )
    day = daytime_timezone()
    payloads = {
        "email.transactional": email(to="ada@example.com"),
        "email.promotional": email(
            category="promotional", to="bob@example.com", subject="Spring sale"
        ),
        "sms.transactional": sms(to="+447911123456"),
        "sms.promotional": sms(
            category="promotional", to="+447911123457", body="Sale!", data={}, sensitive=[],
            timezone=day,
        ),
        "push.transactional": push(to=APNS_TOKEN, platform="apns"),
        "push.promotional": push(category="promotional", to=FCM_TOKEN, platform="fcm",
                                 timezone=day),
    }  # fmt: skip
    ids = {lane: post(client, auth, payload, status="queued") for lane, payload in payloads.items()}

    deliver_ids(app.delivery, list(ids.values()))

    bodies = {lane: timeline(client, auth, i) for lane, i in ids.items()}
    for lane, body in bodies.items():
        assert body["status"] == "sent", (lane, body)
        assert [e["kind"] for e in body["events"]] == ["queued", "attempt", "sent"], lane
    providers = {lane: body["provider"] for lane, body in bodies.items()}
    assert providers == {
        "email.transactional": "ses-main",
        "email.promotional": "smtp-main",
        "sms.transactional": "twilio-main",
        "sms.promotional": "twilio-main",
        "push.transactional": "apns-main",
        "push.promotional": "fcm-main",
    }
    message_id = {lane: body["provider_message_id"] for lane, body in bodies.items()}

    [ses_sent] = [
        m for m in moto_ses.sent_messages() if m["id"] == message_id["email.transactional"]
    ]
    assert ses_sent["destinations"]["ToAddresses"] == ["ada@example.com"]
    assert ses_sent["subject"] == "Your receipt"

    [mail] = smtp.messages
    assert (mail.rcpt_tos, mail.tls, mail.login) == (["bob@example.com"], True, SMTP_USER)
    assert mail.message["Message-ID"].strip("<>") == message_id["email.promotional"]
    assert mail.message["Subject"] == "Spring sale"
    assert mail.message["X-Notifier-Notification-Id"] == ids["email.promotional"]

    # what the fake made of each request, by the sid it answered (its resource repeats the
    # request's form; the two lists are appended apart, so positions do not pair them)
    sent_sms = {m["sid"]: m for m in twilio.created}
    assert set(sent_sms) == {message_id["sms.transactional"], message_id["sms.promotional"]}
    transactional = sent_sms[message_id["sms.transactional"]]
    promotional = sent_sms[message_id["sms.promotional"]]
    assert transactional["messaging_service_sid"] == TWILIO_TRANSACTIONAL_SERVICE
    assert transactional["body"] == "Your code is 583920"
    assert promotional["messaging_service_sid"] == TWILIO_PROMOTIONAL_SERVICE
    assert promotional["to"] == "+447911123457"

    [apns_push] = apns.server.requests
    assert apns_push.authorized and apns_push.device_token == APNS_TOKEN
    assert apns_push.headers["apns-topic"] == APNS_TOPIC
    assert apns_push.headers["apns-id"].lower() == message_id["push.transactional"].lower()
    assert apns_push.payload["aps"]["alert"] == {"title": "Hello Ada", "body": "Your order shipped"}

    [fcm_push] = fcm.server.messages
    assert fcm_push.message["token"] == FCM_TOKEN
    assert fcm_push.message["notification"]["body"] == "Your order shipped"
    assert message_id["push.promotional"].startswith("projects/notifier-test/messages/")
    assert len(fcm.server.grants) == 1  # a real signed JWT grant at the fake token endpoint
    assert moto_sns.sms_messages() == [] or all(
        m.message_id not in message_id.values() for m in moto_sns.sms_messages()
    )  # the SMS backup was not needed


def test_sns_delivers_sms_through_moto(client, auth, build, moto_sns) -> None:
    app = build({"sns-main": sns_block(moto_sns.endpoint_url)}, {"sms.transactional": ["sns-main"]})
    notification_id = post(client, auth, sms(to="+447911123458"), status="queued")

    deliver_ids(app.delivery, [notification_id])

    body = timeline(client, auth, notification_id)
    assert body["status"] == "sent" and body["provider"] == "sns-main"
    sent = moto_sns.sms_message(body["provider_message_id"])
    assert sent is not None and (sent.phone_number, sent.message) == (
        "+447911123458",
        "Your code is 583920",
    )


def test_promotional_sms_fails_over_with_the_promotional_sender_only(
    client, auth, build, twilio, sns_api
) -> None:
    app = build(
        {"twilio-main": twilio_block(twilio), "sns-backup": sns_block(sns_api.endpoint_url)},
        {"sms.promotional": ["twilio-main", "sns-backup"]},
    )
    twilio.program(TwilioAnswer.error(500, 20500))
    notification_id = post(
        client, auth, sms(category="promotional", body="Sale!", data={}, sensitive=[],
                          timezone=daytime_timezone()),
    )  # fmt: skip

    deliver_ids(app.delivery, [notification_id])

    body = timeline(client, auth, notification_id)
    assert body["status"] == "sent" and body["provider"] == "sns-backup"
    [tried] = twilio.messages
    assert tried.form["MessagingServiceSid"] == TWILIO_PROMOTIONAL_SERVICE
    [published] = sns_api.publishes
    assert published.message_attributes()["AWS.SNS.SMS.SMSType"] == "Promotional"


# --------------------------------------------------------------------------- failure matrix


@dataclass(frozen=True)
class Kind:
    """One provider kind: how to reach its programmable fake, and a working backup of its lane."""

    name: str
    lane: str
    payload: Callable[[], dict[str, Any]]
    fakes: tuple[str, ...]  # fixtures it needs
    primary: Callable[[dict[str, Any]], Block]
    refused: Callable[[dict[str, Any]], Block]
    backup: Callable[[dict[str, Any]], Block]
    received: Callable[[dict[str, Any]], int]  # requests that reached the primary's fake
    backup_received: Callable[[dict[str, Any]], int]


KINDS = {
    "smtp": Kind(
        "smtp", "email.transactional", lambda: email(to="ada@example.com"), ("smtp", "ses_api"),
        primary=lambda f: smtp_block(f["smtp"], timeout_seconds=0.5),
        refused=lambda f: smtp_block(f["smtp"], port=closed_port()),
        backup=lambda f: ses_block(f["ses_api"].endpoint_url),
        received=lambda f: f["smtp"].connections,
        backup_received=lambda f: len(f["ses_api"].sent_emails()),
    ),
    "ses": Kind(
        "ses", "email.transactional", lambda: email(to="ada@example.com"), ("ses_api", "smtp"),
        primary=lambda f: ses_block(f["ses_api"].endpoint_url, timeout_seconds=0.5),
        refused=lambda f: ses_block(f"http://127.0.0.1:{closed_port()}"),
        backup=lambda f: smtp_block(f["smtp"]),
        received=lambda f: len(f["ses_api"].sent_emails()),
        backup_received=lambda f: len(f["smtp"].messages),
    ),
    "twilio": Kind(
        "twilio", "sms.transactional", lambda: sms(), ("twilio", "sns_api"),
        primary=lambda f: twilio_block(f["twilio"], timeout_seconds=0.5),
        refused=lambda f: twilio_block(f["twilio"], base_url=f"http://127.0.0.1:{closed_port()}"),
        backup=lambda f: sns_block(f["sns_api"].endpoint_url),
        received=lambda f: len(f["twilio"].messages),
        backup_received=lambda f: len(f["sns_api"].publishes),
    ),
    "sns": Kind(
        "sns", "sms.transactional", lambda: sms(), ("sns_api", "twilio"),
        primary=lambda f: sns_block(f["sns_api"].endpoint_url, timeout_seconds=0.5),
        refused=lambda f: sns_block(f"http://127.0.0.1:{closed_port()}"),
        backup=lambda f: twilio_block(f["twilio"]),
        received=lambda f: len(f["sns_api"].publishes),
        backup_received=lambda f: len(f["twilio"].messages),
    ),
    "fcm": Kind(
        "fcm", "push.transactional", lambda: push(to=FCM_TOKEN, platform="fcm"), ("fcm",),
        primary=lambda f: fcm_block(f["fcm"], timeout_seconds=0.5),
        refused=lambda f: fcm_block(
            f["fcm"], endpoint_base=f"http://127.0.0.1:{closed_port()}/v1/projects"
        ),
        backup=lambda f: fcm_block(f["fcm"]),  # a second FCM sender (same fake, next answer)
        received=lambda f: len(f["fcm"].server.messages),
        backup_received=lambda f: len(f["fcm"].server.messages),
    ),
    "apns": Kind(
        "apns", "push.transactional", lambda: push(to=APNS_TOKEN, platform="apns"), ("apns",),
        primary=lambda f: apns_block(f["apns"], timeout_seconds=0.5),
        refused=lambda f: apns_block(f["apns"], port=closed_port()),
        backup=lambda f: apns_block(f["apns"]),  # a second APNs key (same fake, next answer)
        received=lambda f: len(f["apns"].server.requests),
        backup_received=lambda f: len(f["apns"].server.requests),
    ),
}  # fmt: skip


def program(kind: str, fakes: dict[str, Any], scenario: str) -> None:
    """Make the primary's fake answer the next request as ``scenario`` says."""
    answers: dict[tuple[str, str], Callable[[], None]] = {
        ("smtp", "invalid"): lambda: fakes["smtp"].reply_to_rcpt(
            "ada@example.com", "550 5.1.1 <ada@example.com>: no such user"
        ),
        ("smtp", "throttled"): lambda: fakes["smtp"].reply_to_mail("451 4.7.1 Rate limited"),
        ("smtp", "5xx"): lambda: fakes["smtp"].reply_to_mail("421 4.3.2 Service shutting down"),
        ("smtp", "timeout"): lambda: fakes["smtp"].delay_data(3),
        ("ses", "throttled"): lambda: fakes["ses_api"].answer(
            AwsAnswer(429, "TooManyRequestsException", headers={"Retry-After": "7"})
        ),
        ("ses", "5xx"): lambda: fakes["ses_api"].answer(AwsAnswer(500, "InternalFailure")),
        ("ses", "timeout"): lambda: fakes["ses_api"].answer(AwsAnswer(delay=3)),
        ("twilio", "invalid"): lambda: fakes["twilio"].program(TwilioAnswer.error(400, 21211)),
        ("twilio", "throttled"): lambda: fakes["twilio"].program(
            TwilioAnswer.error(429, 20429, headers={"Retry-After": "7"})
        ),
        ("twilio", "5xx"): lambda: fakes["twilio"].program(TwilioAnswer.error(500, 20500)),
        ("twilio", "timeout"): lambda: fakes["twilio"].program(TwilioAnswer.slow(3)),
        ("sns", "invalid"): lambda: fakes["sns_api"].program(
            SnsAnswer.error(400, "InvalidParameter", "Invalid parameter: PhoneNumber")
        ),
        ("sns", "throttled"): lambda: fakes["sns_api"].program(
            SnsAnswer.error(429, "Throttling", headers={"Retry-After": "3"})
        ),
        ("sns", "5xx"): lambda: fakes["sns_api"].program(SnsAnswer.error(500, "InternalError")),
        ("sns", "timeout"): lambda: fakes["sns_api"].program(SnsAnswer.slow(3)),
        ("fcm", "invalid"): lambda: fakes["fcm"].server.program(
            FCM_TOKEN, FcmAnswer(404, "UNREGISTERED")
        ),
        ("fcm", "throttled"): lambda: fakes["fcm"].server.program(
            FCM_TOKEN, FcmAnswer(429, "QUOTA_EXCEEDED", retry_after="30")
        ),
        ("fcm", "5xx"): lambda: fakes["fcm"].server.program(
            FCM_TOKEN, FcmAnswer(503, "UNAVAILABLE")
        ),
        ("fcm", "timeout"): lambda: fakes["fcm"].server.program(FCM_TOKEN, FcmAnswer(delay=3)),
        ("apns", "invalid"): lambda: fakes["apns"].server.program(
            APNS_TOKEN, ApnsAnswer(410, "Unregistered")
        ),
        ("apns", "throttled"): lambda: fakes["apns"].server.program(
            APNS_TOKEN, ApnsAnswer(429, "TooManyRequests")
        ),
        ("apns", "5xx"): lambda: fakes["apns"].server.program(
            APNS_TOKEN, ApnsAnswer(503, "ServiceUnavailable")
        ),
        ("apns", "timeout"): lambda: fakes["apns"].server.program(APNS_TOKEN, ApnsAnswer(delay=3)),
    }
    answers[(kind, scenario)]()


@pytest.fixture
def run(request: pytest.FixtureRequest, client: Any, auth: dict[str, str], build: Build):
    """Deliver one notification of ``kind``'s lane with ``chain`` (``primary``, ``refused``,
    ``backup``) after programming ``scenario``; returns the fakes and the timeline."""

    def go(kind: Kind, chain: Sequence[str], scenario: str | None) -> tuple[dict[str, Any], dict]:
        fakes = {name: request.getfixturevalue(name) for name in kind.fakes}
        blocks = {f"{kind.name}-{role}": getattr(kind, role)(fakes) for role in chain}
        names = [f"{kind.name}-{role}" for role in chain]
        app = build(
            {n.replace("-refused", "-primary"): b for n, b in blocks.items()},
            {kind.lane: [n.replace("-refused", "-primary") for n in names]},
        )
        if scenario is not None:
            program(kind.name, fakes, scenario)
        notification_id = post(client, auth, kind.payload(), status="queued")
        deliver_ids(app.delivery, [notification_id])
        return fakes, timeline(client, auth, notification_id)

    return go


def not_before(runtime: Any, notification_id: str) -> tuple[datetime, str | None]:
    with runtime.sessions() as session:
        row = session.scalars(select(Notification).where(Notification.id == notification_id)).one()
        return row.not_before, row.pinned_provider


INVALID_REASON = {
    "smtp": "hard_bounce",  # 550 5.1.1: the mailbox does not exist
    "twilio": "invalid_address",
    "sns": "invalid_address",
    "fcm": "invalid_token",
    "apns": "invalid_token",
}


@pytest.mark.parametrize("kind", sorted(INVALID_REASON))
def test_invalid_recipient_fails_and_suppresses(run, runtime, kind: str) -> None:
    _, body = run(KINDS[kind], ["primary"], "invalid")

    assert body["status"] == "failed", body
    assert [e["kind"] for e in body["events"]] == ["queued", "attempt", "failed"]
    with runtime.sessions() as session:
        suppression = session.scalars(select(Suppression)).one()
    assert suppression.reason == INVALID_REASON[kind]
    assert (suppression.channel, suppression.recipient) == (body["channel"], body["to"])
    assert suppression.notification_id == body["id"]


THROTTLE_RETRY_AFTER = {"smtp": None, "ses": 7, "twilio": 7, "sns": 3, "fcm": 30, "apns": None}


@pytest.mark.parametrize("kind", sorted(THROTTLE_RETRY_AFTER))
def test_throttled_schedules_a_retry_honouring_retry_after(run, runtime, kind: str) -> None:
    _, body = run(KINDS[kind], ["primary"], "throttled")

    assert body["status"] == "queued", body
    [attempt] = attempts(body)
    assert "Error" in attempt["detail"] and attempt["provider"] == f"{kind}-primary"
    [retry] = [e for e in body["events"] if e["kind"] == "retry_scheduled"]
    when, pinned = not_before(runtime, body["id"])
    delay = (when - datetime.fromisoformat(retry["at"])).total_seconds()
    expected = THROTTLE_RETRY_AFTER[kind]
    if expected is None:  # no Retry-After in this protocol: the backoff (capped at 0.2 s here)
        assert delay <= 0.25
    else:
        assert expected - 0.1 <= delay <= expected + 0.1
        assert f"retry in {expected}.0s" in retry["detail"]
    assert pinned is None  # the provider answered: any provider may take the retry


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_5xx_fails_over_to_the_next_provider(run, kind: str) -> None:
    _, body = run(KINDS[kind], ["primary", "backup"], "5xx")

    assert body["status"] == "sent", body
    assert body["provider"] == f"{kind}-backup"
    first, second = attempts(body)
    assert first["provider"] == f"{kind}-primary" and first["provider_message_id"] is None
    assert second["provider"] == f"{kind}-backup"
    assert second["provider_message_id"] == body["provider_message_id"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_timeout_after_sending_is_retried_on_the_same_provider_only(
    run, runtime, kind: str
) -> None:
    fakes, body = run(KINDS[kind], ["primary", "backup"], "timeout")

    assert body["status"] == "queued", body
    [attempt] = attempts(body)
    assert attempt["provider"] == f"{kind}-primary"
    assert "acceptance unknown: retried on the same provider only" in attempt["detail"]
    [retry] = [e for e in body["events"] if e["kind"] == "retry_scheduled"]
    assert retry["detail"].endswith(f"on {kind}-primary only")
    assert not_before(runtime, body["id"])[1] == f"{kind}-primary"
    if kind in ("fcm", "apns"):  # the backup is another sender on the same fake
        assert KINDS[kind].received(fakes) == 1  # reached the provider, and nothing else did
    else:
        assert KINDS[kind].received(fakes) >= 1  # the request reached the provider
        assert KINDS[kind].backup_received(fakes) == 0  # never sent elsewhere


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_connection_refused_fails_over(run, kind: str) -> None:
    fakes, body = run(KINDS[kind], ["refused", "backup"], None)

    assert body["status"] == "sent", body
    assert body["provider"] == f"{kind}-backup"
    first, _ = attempts(body)
    assert first["provider"] == f"{kind}-primary" and "acceptance unknown" not in first["detail"]
    assert KINDS[kind].backup_received(fakes) == 1


def test_one_push_lane_serves_both_platforms(client, auth, build, fcm, apns) -> None:
    app = build(
        {"fcm-main": fcm_block(fcm), "apns-main": apns_block(apns)},
        {"push.transactional": ["fcm-main", "apns-main"]},
    )
    ids = [
        post(client, auth, push(to=FCM_TOKEN, platform="fcm"), status="queued"),
        post(client, auth, push(to=APNS_TOKEN, platform="apns"), status="queued"),
    ]

    deliver_ids(app.delivery, ids)

    assert [timeline(client, auth, i)["provider"] for i in ids] == ["fcm-main", "apns-main"]


def test_a_third_party_provider_delivers_through_its_entry_point(
    client, auth, build, tmp_path, monkeypatch
) -> None:
    monkeypatch.syspath_prepend(str(install_distribution(tmp_path / "site")))
    app = build(
        {"pigeon-main": {"type": "pigeon", "loft": "rooftop"}},
        {"sms.transactional": ["pigeon-main"]},
    )
    notification_id = post(client, auth, sms(), status="queued")

    deliver_ids(app.delivery, [notification_id])

    body = timeline(client, auth, notification_id)
    assert body["status"] == "sent" and body["provider"] == "pigeon-main"
    assert body["provider_message_id"].startswith("pigeon-")
    assert (notification_id, "pigeon-main") in {
        (m.notification_id, name) for name, m in PigeonProvider.sent
    }
