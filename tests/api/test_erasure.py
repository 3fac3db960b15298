"""POST /v1/erasures: a person's data is gone from a full database dump and the outbox, the
non-personal record that messages were sent stays, an opt-out keeps blocking as a fingerprint,
and the call is audited without the addresses."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest
from sqlalchemy import select

from notifier.db.models import Notification, Suppression
from notifier.db.session import transaction
from notifier.support.models import AuditEntry
from tests.factories import ALL_SCOPES, api_key, email, make_settings, sms
from tests.services import fresh_postgres_database
from workers.delivery import deliver_ids

ADA_EMAIL, ADA_PHONE, BOB = "ada.lovelace@example.com", "+447911123456", "bob@example.com"


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path):
    """Both databases: the JSON text matching of the audit and import scrub differs by dialect."""
    if request.param == "sqlite":
        yield make_settings(tmp_path)
        return
    with fresh_postgres_database() as url:
        yield make_settings(tmp_path, database_url=url)


@pytest.fixture
def dpo(runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key(runtime, 'privacy', scopes=['data:erase'])}"}


def _dump(runtime) -> str:
    """The whole database as the tools dump it (sqlite3's iterdump, pg_dump)."""
    url = runtime.settings.database_url
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return "\n".join(connection.iterdump())
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    return subprocess.run(
        ["pg_dump", "--data-only", plain], check=True, capture_output=True, text=True
    ).stdout


def _files(runtime) -> str:
    return "".join(p.read_text() for p in runtime.settings.outbox_dir.rglob("*.json"))


def test_erasure_removes_the_person_and_keeps_the_record_and_the_opt_out(
    client, auth, dpo, runtime, worker_app
):
    manager = {"Authorization": f"Bearer {api_key(runtime, 'marketing', scopes=ALL_SCOPES)}"}
    support = {"Authorization": f"Bearer {api_key(runtime, 'helpdesk', scopes=['support:read'])}"}
    client.put(
        "/v1/contacts/ada-1",
        json={"email": ADA_EMAIL, "phone": ADA_PHONE, "attributes": {"first_name": "Augusta"}},
        headers=manager,
    )
    sent = [
        client.post(
            "/v1/notifications", json=email(to=ADA_EMAIL, data={"name": "Augusta"}), headers=auth
        ).json()["id"],
        client.post("/v1/notifications", json=sms(to=ADA_PHONE), headers=auth).json()["id"],
    ]
    bob = client.post("/v1/notifications", json=email(to=BOB), headers=auth).json()["id"]
    deliver_ids(worker_app.delivery, [*sent, bob])
    client.get("/v1/support/notifications", params={"recipient": ADA_EMAIL}, headers=support)
    with transaction(runtime.sessions) as s:
        s.add(Suppression(channel="sms", recipient=ADA_PHONE, reason="stop"))
        s.add(Suppression(channel="email", recipient=ADA_EMAIL, reason="hard_bounce"))
    assert ADA_EMAIL in _dump(runtime) and "Augusta" in _files(runtime)

    # only the contact key is given: the contact's addresses are found from it
    response = client.post(
        "/v1/erasures", json={"contact_keys": ["ada-1"], "request_reference": "DSR-7"}, headers=dpo
    )
    assert response.status_code == 200, response.text
    erased = response.json()["erased"]
    assert erased["notifications"] == 2 and erased["contacts"] == 1
    assert erased["suppressions_fingerprinted"] == 1 and erased["suppressions_deleted"] == 1
    assert erased["audit_entries_scrubbed"] >= 1 and erased["outbox_files"] == 2

    dump = _dump(runtime)
    for secret in (ADA_EMAIL, ADA_PHONE, "Augusta", "ada-1", "583920"):
        assert secret not in dump, secret
    assert "Augusta" not in _files(runtime)
    assert BOB in dump  # nobody else is touched
    with runtime.sessions() as s:
        kept = s.scalars(select(Notification).where(Notification.id.in_(sent))).all()
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "erase")).one()
    assert {(n.status, n.recipient, n.content) for n in kept} == {("sent", "[erased]", None)}
    assert entry.actor == "privacy" and entry.query["request_reference"] == "DSR-7"

    # the STOP is remembered as a fingerprint: it still blocks (a START lifting it is the same
    # fingerprint match, notifier.campaigns.optout.opt_in)
    again = client.post("/v1/notifications", json=sms(to="+44 7911 123456"), headers=auth).json()
    assert again["status"] == "suppressed"
    assert (
        client.post("/v1/erasures", json={"phones": [ADA_PHONE]}, headers=dpo).json()["erased"][
            "notifications"
        ]
        == 1
    )


def test_auth_matrix_and_bad_input_erase_nothing(client, auth, dpo, runtime):
    kept = client.post("/v1/notifications", json=email(to=ADA_EMAIL), headers=auth).json()["id"]
    body = {"emails": [ADA_EMAIL]}
    assert client.post("/v1/erasures", json=body).status_code == 401
    forbidden = client.post("/v1/erasures", json=body, headers=auth)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden_scope"
    for bad, code in (
        ({}, "validation_error"),
        ({"emails": [ADA_EMAIL], "phones": ["07911 12"]}, "invalid_recipient"),
        ({"emails": ["not-an-email"]}, "invalid_recipient"),
        ({"emails": [ADA_EMAIL], "everything": True}, "validation_error"),
    ):
        response = client.post("/v1/erasures", json=bad, headers=dpo)
        assert (response.status_code, response.json()["error"]["code"]) == (422, code), bad
    with runtime.sessions() as s:
        assert s.get(Notification, kept).recipient == ADA_EMAIL
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "erase")).all() == []
