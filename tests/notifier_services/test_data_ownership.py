"""What a service owns, seen from two services side by side: a template name of its own (each
service's intake renders its own "receipt"; another's is a 404), contacts of its own (the same
key in two services is two people, never seen, changed or deleted across), an unsubscribe that
withdraws only its own contacts' consent (STOP withdraws everyone's), and campaigns under a
test key that reach the outbox and never the SMTP fake."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from notifier.campaigns import optout, runs
from notifier.campaigns.models import Contact
from notifier.db.models import Notification
from notifier.db.session import transaction
from notifier.keys import KeyType, create_key
from notifier.runtime import Runtime
from providers.interface import Channel, Lane, SuppressionReason
from tests.campaigns.conftest import run_now
from tests.factories import ALL_SCOPES, email, make_settings
from tests.fakes.smtp_server import FakeSmtpServer
from tests.notifier_services.helpers import service, smtp_spec
from workers.context import DeliveryContext
from workers.delivery import deliver_ids

Headers = dict[str, str]


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, public_url="https://notify.example.com")


def _key(runtime: Runtime, service_id: str, key_type: KeyType = KeyType.LIVE) -> Headers:
    with transaction(runtime.sessions) as session:
        _, plaintext = create_key(
            session, f"{key_type}-key", ALL_SCOPES, None, None, service_id, key_type
        )
    return {"Authorization": f"Bearer {plaintext}"}


def _two(runtime: Runtime) -> tuple[Headers, Headers]:
    return _key(runtime, service(runtime, "billing")), _key(runtime, service(runtime, "growth"))


def _template(client, headers: Headers, name: str, body: str, **extra: str) -> None:
    fields = {"name": name, "channel": "email", "subject": "S", "body": body, **extra}
    response = client.post("/v1/templates", json=fields, headers=headers)
    assert response.status_code == 201, response.text


def _sent_body(runtime: Runtime, notification_id: str) -> str:
    with runtime.sessions() as session:
        row = session.get(Notification, notification_id)
        assert row is not None and row.content is not None
        return str(row.content["body"])


def _by_template(name: str) -> dict[str, object]:
    message = email(template=name, data={"name": "Ada"})
    for inline in ("subject", "body"):
        message.pop(inline)
    return message


def test_two_services_each_render_their_own_receipt(client, runtime) -> None:
    billing, growth = _two(runtime)
    _template(client, billing, "receipt", "billing says thanks, {{ name }}")
    _template(client, growth, "receipt", "growth says hello, {{ name }}")
    assert client.get("/v1/templates/receipt", headers=billing).json()["latest_version"] == 1
    assert client.get("/v1/templates/receipt", headers=growth).json()["latest_version"] == 1
    sent = {}
    for name, headers in (("billing", billing), ("growth", growth)):
        response = client.post("/v1/notifications", json=_by_template("receipt"), headers=headers)
        assert response.status_code == 202, response.text
        sent[name] = response.json()["id"]
    assert _sent_body(runtime, sent["billing"]) == "billing says thanks, Ada"
    assert _sent_body(runtime, sent["growth"]) == "growth says hello, Ada"
    listed = client.get("/v1/templates", headers=growth).json()["items"]
    assert [t["variants"][t["default_locale"]]["body"] for t in listed] == [
        "growth says hello, {{ name }}"
    ]


def test_another_services_template_is_a_404_everywhere(client, runtime) -> None:
    billing, growth = _two(runtime)
    _template(client, billing, "invoice", "yours, {{ name }}")
    refused = client.post("/v1/notifications", json=_by_template("invoice"), headers=growth)
    missing = client.post("/v1/notifications", json=_by_template("nothing"), headers=growth)
    assert refused.status_code == missing.status_code == 404
    assert refused.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert refused.json()["error"]["message"] == "no template named 'invoice'"
    preview = client.post("/v1/templates/invoice/preview", json={"data": {}}, headers=growth)
    assert preview.status_code == 404
    client.post("/v1/audiences", json={"name": "everyone"}, headers=growth)
    campaign = {
        "name": "x",
        "template": "invoice",
        "audience": "everyone",
        "lane": "email.promotional",
    }
    assert client.post("/v1/campaigns", json=campaign, headers=growth).status_code == 404
    with runtime.sessions() as session:  # nothing was stored for growth's attempts
        assert session.scalars(select(Notification)).all() == []


def test_archiving_looks_at_the_campaigns_of_the_templates_own_service(client, runtime) -> None:
    billing, growth = _two(runtime)
    for headers in (billing, growth):
        _template(client, headers, "sale", "Sale")
        client.post("/v1/audiences", json={"name": "everyone"}, headers=headers)
    campaign = {
        "name": "x",
        "template": "sale",
        "audience": "everyone",
        "lane": "email.promotional",
    }
    assert client.post("/v1/campaigns", json=campaign, headers=billing).status_code == 201
    # growth's "sale" is used by no campaign of growth's: billing's draft neither blocks nor shows
    archived = client.post("/v1/templates/sale/archive", headers=growth)
    assert archived.status_code == 200, archived.text
    blocked = client.post("/v1/templates/sale/archive", headers=billing)
    assert blocked.status_code == 409 and "'x'" in blocked.json()["error"]["message"]


def test_contacts_belong_to_their_service(client, runtime) -> None:
    billing, growth = _two(runtime)
    put = client.put(
        "/v1/contacts/ada",
        json={"email": "ada@example.com", "attributes": {"plan": "pro"}, "audiences": ["news"]},
        headers=billing,
    )
    assert put.status_code == 200, put.text
    assert client.get("/v1/contacts/ada", headers=growth).status_code == 404
    assert client.delete("/v1/contacts/ada", headers=growth).status_code == 404
    # the same key in growth is growth's own contact, and billing's stays as it was
    mine = client.put(
        "/v1/contacts/ada",
        json={"email": "ada@growth.example", "audiences": ["news"]},
        headers=growth,
    )
    assert mine.status_code == 200, mine.text
    theirs = client.get("/v1/contacts/ada", headers=billing).json()
    assert theirs["email"] == "ada@example.com" and theirs["attributes"] == {"plan": "pro"}
    imported = client.post(
        "/v1/audiences/news/import",
        content=b"key,email\nbob,bob@example.com\n",
        headers={**growth, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    sizes = {
        name: client.get("/v1/audiences/news", headers=h).json()["size"]
        for name, h in (("billing", billing), ("growth", growth))
    }
    assert sizes == {"billing": 1, "growth": 2}
    listed = client.get("/v1/audiences/news/contacts", headers=billing).json()["items"]
    assert [c["email"] for c in listed] == ["ada@example.com"]
    assert client.delete("/v1/contacts/ada", headers=growth).status_code == 204
    assert client.get("/v1/contacts/ada", headers=billing).status_code == 200


def _consent(runtime: Runtime, key: str) -> dict[str, bool]:
    with runtime.sessions() as session:
        rows = session.scalars(select(Contact).where(Contact.key == key)).all()
        return {row.service_id: row.email_consent_at is not None for row in rows} | {
            f"sms:{row.service_id}": row.sms_consent_at is not None for row in rows
        }


def test_an_unsubscribe_withdraws_its_services_consent_and_stop_everyones(client, runtime) -> None:
    billing_id, growth_id = service(runtime, "billing"), service(runtime, "growth")
    for service_id in (billing_id, growth_id):
        answered = client.put(
            "/v1/contacts/ada",
            json={
                "email": "ada@example.com",
                "phone": "+447911123456",
                "consent": {"email": True, "sms": True},
            },
            headers=_key(runtime, service_id),
        )
        assert answered.status_code == 200, answered.text
    with transaction(runtime.sessions) as session:
        optout.opt_out(
            session,
            Channel.EMAIL,
            "ada@example.com",
            SuppressionReason.UNSUBSCRIBED,
            "link",
            billing_id,
        )
    consent = _consent(runtime, "ada")
    assert (consent[billing_id], consent[growth_id]) == (False, True)
    with transaction(runtime.sessions) as session:
        optout.opt_out(
            session, Channel.SMS, "+447911123456", SuppressionReason.STOP, "STOP", billing_id
        )
    consent = _consent(runtime, "ada")
    assert (consent[f"sms:{billing_id}"], consent[f"sms:{growth_id}"]) == (False, False)


@pytest.fixture
def smtp() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


def test_a_test_keys_campaign_reaches_the_outbox_never_the_provider(
    client, runtime, settings, smtp
) -> None:
    ci = _key(runtime, service(runtime, "billing"), KeyType.TEST)
    live = _key(runtime, service(runtime, "growth"))
    run_ids = {}
    for name, headers in (("ci", ci), ("live", live)):
        _template(client, headers, "sale", "Sale for {{ key }}")
        for person in ("ada", "bob"):
            client.put(
                f"/v1/contacts/{person}",
                json={
                    "email": f"{person}@{name}.example",
                    "consent": {"email": True},
                    "audiences": ["everyone"],
                },
                headers=headers,
            )
        created = client.post(
            "/v1/campaigns",
            json={
                "name": "spring",
                "template": "sale",
                "audience": "everyone",
                "lane": "email.promotional",
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        assert created.json()["test"] is (name == "ci")
        run_ids[name] = run_now(client, headers, created.json()["id"])
        runs.run(runtime, run_ids[name])
    with runtime.sessions() as session:
        rows = session.scalars(select(Notification)).all()
        by_run = {name: [r for r in rows if r.reference == run] for name, run in run_ids.items()}
    assert [(r.status, r.test) for r in by_run["ci"]] == [("queued", True)] * 2
    assert [(r.status, r.test) for r in by_run["live"]] == [("queued", False)] * 2
    ctx = DeliveryContext(runtime, chains={Lane.EMAIL_PROMOTIONAL: [smtp_spec("smtp", smtp)]})
    try:
        deliver_ids(ctx, [r.id for r in rows])
    finally:
        ctx.close()
    # the SMTP fake saw the live campaign only; the test campaign went to the outbox
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["ada@live.example", "bob@live.example"]
    outbox = settings.outbox_dir / "email.promotional"
    written = sorted(json.loads((outbox / f"{r.id}.json").read_text())["to"] for r in by_run["ci"])
    assert written == ["ada@ci.example", "bob@ci.example"]
    shown = client.get(f"/v1/notifications/{by_run['ci'][0].id}", headers=ci).json()
    assert (shown["status"], shown["test"], shown["provider"]) == ("sent", True, "simulator")
