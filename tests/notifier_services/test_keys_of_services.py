"""Keys belong to a service and have a type: the caller carries its service, read with the key
in one query and cached with it; the keys API makes keys in the acting key's service unless a
platform admin names another, and to anyone else another service's keys do not exist."""

from __future__ import annotations

from sqlalchemy import event

from notifier import keys as key_store
from notifier.authentication import Authenticator
from notifier.db.session import transaction
from notifier.keys import KeyType
from notifier.services.models import DEFAULT_SERVICE_ID, Service
from tests.factories import api_key


def _service(runtime, name: str, **values) -> str:
    with transaction(runtime.sessions) as s:
        settings: dict[str, dict[str, object]] = {
            "senders": {},
            "provider_chains": {},
            "rate_limits": {},
            "daily_quotas": {},
        }
        row = Service(name=name, **{**settings, **values})
        s.add(row)
        s.flush()
        return row.id


def _key(runtime, service_id: str, key_type: KeyType = KeyType.LIVE, scopes=None) -> str:
    with transaction(runtime.sessions) as s:
        _, plaintext = key_store.create_key(
            s, "ci", scopes or ["notifications:send"], None, None, service_id, key_type
        )
    return plaintext


def test_the_caller_carries_its_service_from_one_query(runtime):
    billing = _service(runtime, "billing", daily_quotas={"sms.transactional": 5}, trial=True)
    plaintext = _key(runtime, billing, KeyType.TEAM)
    statements: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    authenticator = Authenticator()
    with runtime.sessions() as session:
        caller = authenticator.authenticate(session, f"Bearer {plaintext}")
        again = authenticator.authenticate(session, f"Bearer {plaintext}")
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and "JOIN services" in selects[0]
    assert again is caller  # the cache: no second query
    assert caller.service.name == "billing" and caller.service.trial
    assert caller.key_type == KeyType.TEAM and caller.restricted_to_allow_list
    assert caller.service.daily_quotas == {"sms.transactional": 5}


def test_todays_keys_are_live_keys_of_the_default_service(runtime, key):
    with runtime.sessions() as session:
        caller = Authenticator().authenticate(session, f"Bearer {key}")
    assert caller.service.id == DEFAULT_SERVICE_ID and caller.service.name == "default"
    assert caller.key_type == KeyType.LIVE and not caller.restricted_to_allow_list


def test_a_change_to_the_service_reaches_the_next_authentication(runtime):
    billing = _service(runtime, "billing")
    plaintext = _key(runtime, billing)
    with runtime.sessions() as session:
        assert Authenticator().authenticate(session, f"Bearer {plaintext}").service.trial
    with transaction(runtime.sessions) as s:
        row = s.get(Service, billing)
        assert row is not None
        row.trial = False
    with runtime.sessions() as session:  # a fresh cache: what CACHE_SECONDS later looks like
        assert not Authenticator().authenticate(session, f"Bearer {plaintext}").service.trial


def test_keys_api_service_and_type(client, runtime):
    billing = _service(runtime, "billing")
    _service(runtime, "growth")
    billing_admin = {"Authorization": f"Bearer {_key(runtime, billing, scopes=['keys:manage'])}"}
    admin_key = api_key(runtime, "platform", scopes=["keys:manage", "services:manage"])
    platform = {"Authorization": f"Bearer {admin_key}"}

    def post(headers: dict[str, str], **fields: str):
        body = {"name": "ci", "scopes": ["notifications:send"], **fields}
        return client.post("/v1/keys", json=body, headers=headers)

    own = post(billing_admin, type="test")
    assert own.status_code == 201, own.text
    assert own.json()["service"] == "billing" and own.json()["type"] == "test"
    for headers, fields, status, code in (
        (billing_admin, {"service": "growth"}, 403, "forbidden_scope"),
        (platform, {"service": "nope"}, 422, "unknown_service"),
        (platform, {"type": "free"}, 422, "validation_error"),
    ):
        refused = post(headers, **fields)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), fields
    growth = post(platform, service="growth", type="team")
    assert growth.status_code == 201 and growth.json()["service"] == "growth"
    # billing's admin sees billing's keys only; another service's key is not found
    seen = {k["service"] for k in client.get("/v1/keys", headers=billing_admin).json()}
    assert seen == {"billing"}
    assert {k["service"] for k in client.get("/v1/keys", headers=platform).json()} == {
        "billing",
        "growth",
        "default",
    }
    growth_id = growth.json()["id"]
    for action in ("revoke", "rotate"):
        response = client.post(f"/v1/keys/{growth_id}/{action}", json={}, headers=billing_admin)
        assert response.status_code == 404, action
    rotated = client.post(f"/v1/keys/{growth_id}/rotate", json={}, headers=platform)
    assert rotated.status_code == 201
    assert rotated.json()["service"] == "growth" and rotated.json()["type"] == "team"
