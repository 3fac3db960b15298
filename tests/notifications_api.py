"""The intake API as the tests drive it: post a notification, read its timeline, wait for a status.

One definition for the worker, support, receipts and pipeline tests, so each of them checks the
same things of every answer (202 on intake, 200 on a read) instead of its own copy checking less.
The client is the API's ``TestClient`` or any ``httpx.Client`` on a running API.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import httpx


def post(
    client: httpx.Client,
    auth: dict[str, str],
    payload: dict[str, Any],
    *,
    status: str | None = None,
) -> str:
    """Send one notification (202 expected) and return its id; ``status``: the one it must have."""
    response = client.post("/v1/notifications", json=payload, headers=auth)
    assert response.status_code == 202, response.text
    body = response.json()
    if status is not None:
        assert body["status"] == status, body
    return str(body["id"])


def timeline(client: httpx.Client, auth: dict[str, str], notification_id: str) -> dict[str, Any]:
    """The notification as its caller sees it: status, attempts and events."""
    response = client.get(f"/v1/notifications/{notification_id}", headers=auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for(
    client: httpx.Client,
    auth: dict[str, str],
    notification_id: str,
    statuses: Collection[str] = ("sent",),
    timeout: float = 30.0,
) -> dict[str, Any]:
    """The timeline once its status is one of ``statuses``, or as it is when ``timeout`` passed
    (the caller asserts on the status, so a timeout fails with what was seen)."""
    deadline = time.monotonic() + timeout
    while True:
        body = timeline(client, auth, notification_id)
        if body["status"] in statuses or time.monotonic() > deadline:
            return body
        time.sleep(0.1)
