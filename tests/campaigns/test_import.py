"""CSV import: streamed through the API and the CLI, bad rows reported by line, idempotent."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import func, select

from notifier.campaigns.models import AudienceMember, Contact

CSV = (
    "key,email,phone,locale,timezone,email_consent,sms_consent,first_name\n"
    "u1,Ada@Example.com,+447911123456,en-GB,Europe/London,yes,no,Ada\n"
    "u2,not-an-email,,fr,,yes,,Brice\n"  # line 3: bad email
    "u3,cy@example.com,+33612345678,fr,Mars/Olympus,,,Cy\n"  # line 4: bad timezone
    ",dee@example.com,,,,,,Dee\n"  # line 5: no key
    'u6,"quoted, name"@example.com,,,,maybe,,Eve\n'  # line 6: bad consent value
    'u7,gus@example.com,,,,1,,"Gus\nthe second"\n'  # lines 7-8: a quoted newline is fine
    "u8,hal@example.com\n"  # line 9: too few fields
)


def test_import_reports_bad_rows_by_line_and_keeps_good_ones(client, manager, runtime):
    response = client.post(
        "/v1/audiences/newsletter/import?filename=list.csv",
        content=CSV.encode(),
        headers={**manager, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "completed" and job["rows_read"] == 7
    assert job["created"] == 2 and job["error_count"] == 5
    lines = {e["line"]: e["message"] for e in job["errors"]}
    assert sorted(lines) == [3, 4, 5, 6, 9]
    assert "email" in lines[3] and "timezone" in lines[4] and "key" in lines[5]
    assert "consent" in lines[6] and "fields" in lines[9]
    ada = client.get("/v1/contacts/u1", headers=manager).json()
    assert ada["email"] == "ada@example.com" and ada["attributes"] == {"first_name": "Ada"}
    assert ada["consent"]["email"] is not None and ada["consent"]["sms"] is None
    assert (
        client.get("/v1/contacts/u7", headers=manager).json()["attributes"]["first_name"]
        == "Gus\nthe second"
    )
    progress = client.get(f"/v1/imports/{job['id']}", headers=manager).json()
    assert progress["bytes_read"] == len(CSV.encode()) and progress["status"] == "completed"
    assert client.get("/v1/audiences/newsletter", headers=manager).json()["size"] == 2


def test_importing_twice_is_idempotent_on_the_contact_key(client, manager, runtime):
    headers = {**manager, "Content-Type": "text/csv"}
    body = "key,email,email_consent\nk1,a@example.com,yes\nk2,b@example.com,yes\n"
    first = client.post("/v1/audiences/a/import", content=body, headers=headers).json()
    consent_before = client.get("/v1/contacts/k1", headers=manager).json()["consent"]["email"]
    second = client.post("/v1/audiences/a/import", content=body, headers=headers).json()
    assert (first["created"], second["created"], second["updated"]) == (2, 0, 2)
    assert (
        client.get("/v1/contacts/k1", headers=manager).json()["consent"]["email"] == consent_before
    )
    client.post("/v1/audiences/a/import", content="key,email_consent\nk1,no\n", headers=headers)
    after = client.get("/v1/contacts/k1", headers=manager).json()
    assert after["consent"]["email"] is None and after["email"] == "a@example.com"
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 2
        assert s.scalar(select(func.count()).select_from(AudienceMember)) == 2


def test_a_header_without_key_fails_the_import_with_nothing_stored(client, manager, runtime):
    response = client.post(
        "/v1/audiences/a/import",
        content="email\na@example.com\n",
        headers={**manager, "Content-Type": "text/csv"},
    )
    assert response.status_code == 422 and "line 1" in response.json()["error"]["message"]
    imports = client.get("/v1/audiences/a/imports", headers=manager).json()
    assert imports[0]["status"] == "failed"
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 0


def test_cli_imports_a_file_with_a_progress_bar(tmp_path, settings, runtime):
    rows = "".join(f"c{i},c{i}@example.com,yes\n" for i in range(1200))
    path = tmp_path / "contacts.csv"
    path.write_text("key,email,email_consent\n" + rows + "bad,nope,yes\n")
    env = {
        **os.environ,
        "NOTIFIER_DATA_DIR": str(settings.data_dir),
        "NOTIFIER_ENV": "test",
        "NOTIFIER_DATABASE_URL": settings.database_url,
        "COLUMNS": "120",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "notifier.cli",
            "audiences",
            "import",
            str(path),
            "--audience",
            "cli",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # one bad row
    assert "1201 rows, 1200 created" in result.stderr and "line 1202" in result.stderr
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AudienceMember)) == 1200
