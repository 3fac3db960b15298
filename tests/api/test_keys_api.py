"""/v1/keys: an admin key creates, lists, revokes and rotates keys (with an overlap); only the
hash is stored; other keys get 403; refusals store nothing."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from notifier.db.models import ApiKey, utcnow
from notifier.db.session import transaction
from notifier.keys import CACHE_SECONDS
from notifier.support.models import AuditEntry
from tests.factories import api_key, email


@pytest.fixture
def admin(runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key(runtime, 'platform', scopes=['keys:manage'])}"}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _keys(runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(ApiKey))


def test_auth_matrix_and_bad_input_store_nothing(client, auth, admin, runtime):
    before = _keys(runtime)
    good = {"name": "billing", "scopes": ["notifications:send"]}
    for method, path, body in (
        ("post", "/v1/keys", good),
        ("get", "/v1/keys", None),
        ("post", "/v1/keys/x/revoke", None),
        ("post", "/v1/keys/x/rotate", {}),
    ):
        for headers, status in (({}, 401), (auth, 403)):
            response = getattr(client, method)(
                path, headers=headers, **({"json": body} if body is not None else {})
            )
            assert response.status_code == status, (path, headers)
    for body in (
        {"name": "x", "scopes": ["everything"]},
        {"name": "", "scopes": ["notifications:send"]},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["notifications:send"], "lanes": ["fax.transactional"]},
        {"name": "x", "scopes": ["notifications:send"], "rate_limit": "lots"},
        {"name": "x", "scopes": ["notifications:send"], "secret_hash": "abc"},
    ):
        response = client.post("/v1/keys", json=body, headers=admin)
        assert (
            response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
        ), body
    assert client.post("/v1/keys/nope/revoke", headers=admin).status_code == 404
    assert (
        client.post("/v1/keys/nope/rotate", json={"overlap_seconds": -1}, headers=admin).status_code
        == 422
    )
    assert _keys(runtime) == before
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_create_use_list_and_revoke(client, admin, runtime):
    created = client.post(
        "/v1/keys",
        json={
            "name": "billing",
            "scopes": ["notifications:send", "notifications:read"],
            "lanes": ["email.transactional"],
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["key"]
    assert (
        client.post("/v1/notifications", json=email(), headers=_bearer(secret)).status_code == 202
    )
    with runtime.engine.connect() as connection:
        dump = " ".join(str(r) for r in connection.execute(text("SELECT * FROM api_keys")))
    assert secret not in dump and hashlib.sha256(secret.encode()).hexdigest() in dump
    listed = client.get("/v1/keys", headers=admin).json()
    assert [k["name"] for k in listed] == ["billing", "platform"]
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    assert client.post(f"/v1/keys/{body['id']}/revoke", headers=admin).json()["active"] is False
    time.sleep(CACHE_SECONDS + 0.2)  # revocation takes effect within the authentication cache
    assert (
        client.post("/v1/notifications", json=email(), headers=_bearer(secret)).status_code == 401
    )
    assert client.post(f"/v1/keys/{body['id']}/revoke", headers=admin).status_code == 409
    with runtime.sessions() as s:
        actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["create_key", "revoke_key"]


def test_rotation_keeps_the_old_key_working_for_the_overlap(client, admin, runtime):
    old_secret = api_key(
        runtime, "billing", scopes=["notifications:send"], lanes=["email.transactional"]
    )
    with runtime.sessions() as s:
        old_id = s.scalars(select(ApiKey.id).where(ApiKey.name == "billing")).one()
    rotated = client.post(
        f"/v1/keys/{old_id}/rotate", json={"overlap_seconds": 3600}, headers=admin
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["replaces"] == old_id and new["scopes"] == ["notifications:send"]
    assert new["lanes"] == ["email.transactional"] and new["name"] == "billing"
    for secret in (old_secret, new["key"]):  # both work during the overlap
        assert (
            client.post("/v1/notifications", json=email(), headers=_bearer(secret)).status_code
            == 202
        )
    old = next(k for k in client.get("/v1/keys", headers=admin).json() if k["id"] == old_id)
    assert old["active"] is True and old["revoked_at"] is not None
    assert client.post(f"/v1/keys/{old_id}/rotate", json={}, headers=admin).status_code == 409

    with transaction(runtime.sessions) as s:  # the hour passes
        s.execute(
            update(ApiKey)
            .where(ApiKey.id == old_id)
            .values(revoked_at=utcnow() - timedelta(seconds=1))
        )
    time.sleep(CACHE_SECONDS + 0.2)
    assert (
        client.post("/v1/notifications", json=email(), headers=_bearer(old_secret)).status_code
        == 401
    )
    assert (
        client.post("/v1/notifications", json=email(), headers=_bearer(new["key"])).status_code
        == 202
    )
