"""CSV import of contacts into an audience: streamed, idempotent on the contact key, with
row-level errors reported by line number and progress visible while it runs.

The file is read as a stream (never whole in memory) in chunks of :data:`CHUNK` rows; each
chunk is upserted and its progress committed in one transaction, so ``GET /v1/imports/{id}``
shows how far it got, and a failure half-way keeps the chunks already imported (importing the
same file again is harmless: contacts are matched on ``key``).

Columns: ``key`` (required), ``email``, ``phone``, ``locale``, ``timezone``, ``email_consent``,
``sms_consent``, ``push_consent`` (yes/no; empty leaves consent as it is), ``push_token`` and
``push_platform`` (fcm or apns). Every other column is a personalisation attribute, usable in
templates by its name. An empty cell leaves that field as it is.

A key that appears twice in one file is a line error on the later row (the first row is
imported): silently letting the later row overwrite the earlier one hid mistakes in exported
lists. Through the API the body may be up to ``NOTIFIER_MAX_IMPORT_BYTES`` (256 MiB by default;
the 1 MiB limit of other requests does not apply); it is streamed to a spool file, never held
in memory whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy.orm import Session, sessionmaker

from notifier.campaigns import contacts
from notifier.campaigns.models import Audience, ContactImport, ImportStatus
from notifier.db.models import DEFAULT_SERVICE_ID, utcnow
from notifier.db.session import transaction
from notifier.errors import ErrorCode, NotifierError, field_error
from providers.interface import Channel

CHUNK = 500
MAX_ERRORS_KEPT = 1000
KNOWN = {
    "key",
    "email",
    "phone",
    "locale",
    "timezone",
    "email_consent",
    "sms_consent",
    "push_consent",
    "push_token",
    "push_platform",
}

Progress = Callable[[ContactImport], None]


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from the underlying binary stream (progress of a stream)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


@dataclass
class _Row:
    line: int
    cells: dict[str, str]


def start(
    sessions: sessionmaker[Session],
    audience_name: str,
    filename: str | None = None,
    bytes_total: int | None = None,
    service_id: str = DEFAULT_SERVICE_ID,
) -> ContactImport:
    """The import job into ``service_id``'s audience ``audience_name`` (created if it has none);
    its contacts are that service's."""
    with transaction(sessions) as session:
        audience = contacts.get_or_create_audience(session, audience_name, service_id)
        job = ContactImport(
            audience_id=audience.id,
            status=ImportStatus.RUNNING.value,
            filename=(filename or "")[:255] or None,
            bytes_total=bytes_total,
            bytes_read=0,
            rows_read=0,
            created=0,
            updated=0,
            error_count=0,
            errors=[],
        )
        session.add(job)
        session.flush()
        session.expunge(job)
    return job


def run(
    sessions: sessionmaker[Session],
    job: ContactImport,
    stream: IO[bytes],
    on_progress: Progress | None = None,
) -> ContactImport:
    """Import ``stream`` (UTF-8 CSV with a header line) into the job's audience."""
    counter = _CountingReader(stream)
    text = io.TextIOWrapper(io.BufferedReader(counter, 65536), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = _header(next(reader, None))
        batch: list[_Row] = []
        first_line: dict[str, int] = {}  # key -> the line it first appeared on
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            row = _Row(reader.line_num, _cells(header, cells))
            key = row.cells.get("key", "").strip()
            if key and key in first_line:
                row.cells = {
                    "__error__": f"the key {key!r} already appeared on line {first_line[key]}; "
                    "this row was not imported (one row per contact)"
                }
            elif key:
                first_line[key] = row.line
            batch.append(row)
            if len(batch) >= CHUNK:
                _commit_chunk(sessions, job, batch, counter.count, on_progress)
                batch = []
        _commit_chunk(sessions, job, batch, counter.count, on_progress, final=True)
    except (NotifierError, UnicodeDecodeError, csv.Error) as e:
        message = e.message if isinstance(e, NotifierError) else f"line {reader.line_num + 1}: {e}"
        _fail(sessions, job, message)
        raise NotifierError(ErrorCode.VALIDATION_ERROR, f"import failed: {message}") from e
    return job


def _header(cells: list[str] | None) -> list[str]:
    if not cells:
        raise field_error(ErrorCode.VALIDATION_ERROR, "file", "line 1: the file is empty")
    header = [c.strip().lower() for c in cells]
    if "key" not in header:
        raise field_error(
            ErrorCode.VALIDATION_ERROR, "file", "line 1: the header has no 'key' column"
        )
    for name in header:
        if name not in KNOWN and not name.isidentifier():
            raise field_error(
                ErrorCode.VALIDATION_ERROR,
                "file",
                f"line 1: column {name!r} is not a known field nor an identifier",
            )
    if len(set(header)) != len(header):
        raise field_error(ErrorCode.VALIDATION_ERROR, "file", "line 1: repeated column names")
    return header


def _cells(header: list[str], cells: list[str]) -> dict[str, str]:
    if len(cells) != len(header):
        return {"__error__": f"has {len(cells)} fields, the header has {len(header)}"}
    return dict(zip(header, cells, strict=True))


def _record(cells: dict[str, str]) -> contacts.ContactRecord:
    if "__error__" in cells:
        raise NotifierError(ErrorCode.VALIDATION_ERROR, cells["__error__"])
    get = {k: v.strip() for k, v in cells.items()}
    consent = {
        channel.value: contacts.parse_bool(
            get[f"{channel.value}_consent"], f"{channel.value}_consent"
        )
        for channel in Channel
        if get.get(f"{channel.value}_consent")
    }
    tokens = None
    if get.get("push_token"):
        tokens = [{"token": get["push_token"], "platform": get.get("push_platform") or "fcm"}]
    try:
        return contacts.build_record(
            get.get("key"),
            email=get.get("email") or None,
            phone=get.get("phone") or None,
            locale=get.get("locale") or None,
            timezone=get.get("timezone") or None,
            attributes={k: v for k, v in cells.items() if k not in KNOWN and v != ""},
            push_tokens=tokens,
            consent=consent,
        )
    except ValueError as e:  # an unknown push platform
        raise NotifierError(ErrorCode.VALIDATION_ERROR, f"push_platform: {e}") from e


def _commit_chunk(
    sessions: sessionmaker[Session],
    job: ContactImport,
    batch: list[_Row],
    bytes_read: int,
    on_progress: Progress | None,
    final: bool = False,
) -> None:
    records, errors = [], []
    for row in batch:
        try:
            records.append(_record(row.cells))
        except NotifierError as e:
            errors.append({"line": row.line, "message": _error_text(e)})
    with transaction(sessions) as session:
        created = 0
        if records:
            audience = session.get(Audience, job.audience_id)
            if audience is None:  # audiences are archived, never deleted
                raise LookupError(f"audience {job.audience_id} vanished during its import")
            rows, created = contacts.upsert(session, audience.service_id, records)
            contacts.add_members(session, audience, rows)
        stored = session.get(ContactImport, job.id, with_for_update=True)
        if stored is None:  # the job row is never deleted while its import runs
            raise LookupError(f"contact import {job.id} vanished during its import")
        stored.rows_read += len(batch)
        stored.created += created
        stored.updated += len({r.key for r in records}) - created
        stored.error_count += len(errors)
        room = MAX_ERRORS_KEPT - len(stored.errors or [])
        if errors and room > 0:
            stored.errors = [*(stored.errors or []), *errors[:room]]
        stored.bytes_read = bytes_read
        stored.updated_at = utcnow()
        if final:
            stored.status = ImportStatus.COMPLETED.value
            stored.finished_at = stored.updated_at
        session.flush()
        session.expunge(stored)
    _copy(stored, job)
    if on_progress is not None:
        on_progress(job)


def _fail(sessions: sessionmaker[Session], job: ContactImport, message: str) -> None:
    with transaction(sessions) as session:
        stored = session.get(ContactImport, job.id)
        if stored is not None:
            stored.status = ImportStatus.FAILED.value
            stored.errors = [*(stored.errors or []), {"line": None, "message": message}]
            stored.finished_at = stored.updated_at = utcnow()
            session.flush()
            session.expunge(stored)
            _copy(stored, job)


def _copy(source: ContactImport, target: ContactImport) -> None:
    if source is target:
        return
    for name in (
        "status",
        "bytes_read",
        "rows_read",
        "created",
        "updated",
        "error_count",
        "errors",
        "updated_at",
        "finished_at",
    ):
        setattr(target, name, getattr(source, name))


def _error_text(error: NotifierError) -> str:
    field_name = error.details[0].field if error.details else None
    return (
        f"{field_name}: {error.message}"
        if field_name and field_name not in error.message
        else error.message
    )
