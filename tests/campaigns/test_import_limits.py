"""CSV imports through the API: a key repeated within one file is a line error (the first row
wins), and large files stream under their own documented limit instead of the API's 1 MiB."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from notifier.api.app import create_app
from notifier.campaigns.models import AudienceMember, Contact, ContactImport


def _import(client, headers, body: bytes, audience: str = "everyone"):
    return client.post(
        f"/v1/audiences/{audience}/import",
        content=body,
        headers={**headers, "Content-Type": "text/csv"},
    )


def test_a_key_repeated_in_one_file_is_reported_and_does_not_overwrite(client, manager):
    body = (
        b"key,email,first_name\n"
        b"u1,ada@example.com,Ada\n"
        b"u2,bob@example.com,Bob\n"
        b"u1,eve@example.com,Eve\n"  # line 4: the same key again
    )
    job = _import(client, manager, body).json()
    assert job["created"] == 2 and job["error_count"] == 1
    assert job["errors"] == [
        {
            "line": 4,
            "message": "the key 'u1' already appeared on line 2; this row was not imported "
            "(one row per contact)",
        }
    ]
    ada = client.get("/v1/contacts/u1", headers=manager).json()
    assert ada["email"] == "ada@example.com" and ada["attributes"] == {"first_name": "Ada"}


def test_a_40000_row_file_streams_in(client, manager, runtime):
    rows = "".join(f"c{i:06d},c{i:06d}@example.com,yes,Name{i}\n" for i in range(40_000))
    body = ("key,email,email_consent,first_name\n" + rows).encode()
    assert len(body) > 1_048_576  # the API's default body limit
    response = _import(client, manager, body)
    assert response.status_code == 200, response.text[:300]
    job = response.json()
    assert job["status"] == "completed" and job["created"] == 40_000 and job["error_count"] == 0
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AudienceMember)) == 40_000


def test_over_the_import_limit_is_a_413_and_stores_nothing(runtime, manager, settings):
    settings.max_import_bytes = 10_000
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
        body = ("key,email\n" + "".join(f"k{i},k{i}@example.com\n" for i in range(1000))).encode()
        response = _import(client, manager, body)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ContactImport)) == 0
        assert s.scalar(select(func.count()).select_from(Contact)) == 0
