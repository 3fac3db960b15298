"""Campaign fixtures: a key with campaigns:manage, templates, an audience of contacts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import ALL_SCOPES, api_key


@pytest.fixture
def manager(runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key(runtime, 'marketing', scopes=ALL_SCOPES)}"}


def template(client, headers, name: str, channel: str, **fields: Any) -> dict:
    response = client.post(
        "/v1/templates", json={"name": name, "channel": channel, **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def contact(client, headers, key: str, **fields: Any) -> dict:
    response = client.put(f"/v1/contacts/{key}", json=fields, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def campaign(client, headers, **fields: Any) -> dict:
    body = {
        "name": "spring sale",
        "template": "sale",
        "audience": "everyone",
        "lane": "email.promotional",
    }
    body.update(fields)
    response = client.post("/v1/campaigns", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def settings(tmp_path):
    from tests.factories import make_settings

    return make_settings(
        tmp_path, twilio_auth_token="twilio-test-token", public_url="https://notify.example.com"
    )


@pytest.fixture
def worker_app(runtime, settings):
    from workers.app import create_worker_app

    app = create_worker_app(settings, pool_size=5)
    yield app
    app.delivery.close()
    app.runtime.close()


def run_now(client, headers, campaign_id: str) -> str:
    response = client.post(f"/v1/campaigns/{campaign_id}/run", headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["id"]
