"""API keys over the API, for a platform team automating rotation (scope ``keys:manage``, an
admin scope: give it to few keys). The CLI (``notifier keys ...``) does the same on the host.

    POST /v1/keys                   {"name": "billing", "scopes": [...], "lanes": [...]}
                                    -> 201, the key once
    GET  /v1/keys                   every key, newest first, never a secret or hash
    POST /v1/keys/{id}/revoke       revoked now (also ends a rotation's overlap)
    POST /v1/keys/{id}/rotate       {"overlap_seconds": 86400} -> 201, the new key once; the old
                                    one keeps working for the overlap, then stops

A key belongs to a service and has a type (``live``, ``test``, ``team``). Without
``service`` a new key belongs to the acting key's service; naming another service, and seeing
or changing keys of other services, takes ``services:manage`` too (the platform admin): to
anyone else another service's key does not exist (404).

As on the CLI, the plaintext key is in the answer once and only its SHA-256 is stored;
revocation takes effect within the authentication cache's few seconds. Every change is written
to the support audit log under the acting key's name.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter
from limits import parse as parse_rule
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from notifier import keys as key_store
from notifier.api.deps import ApiKeyDep, SessionDep
from notifier.db.models import ApiKey, utcnow
from notifier.errors import ErrorCode, NotifierError, field_error
from notifier.keys import Caller, KeyType, Scope
from notifier.services import registry
from notifier.services.models import Service
from notifier.support import audit
from notifier.support.models import AuditAction
from providers.interface import Lane

router = APIRouter(prefix="/v1/keys", tags=["keys"])

MAX_OVERLAP = timedelta(days=30)


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1)
    lanes: list[Lane] | None = Field(default=None, description="omit for every lane")
    rate_limit: str | None = Field(default=None, max_length=50, examples=["600/minute"])
    service: str | None = Field(
        default=None, max_length=63, description="service name; omit for the acting key's"
    )
    type: KeyType = Field(default=KeyType.LIVE, description="live, test (outbox only) or team")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(default=86_400, ge=0, le=int(MAX_OVERLAP.total_seconds()))


class KeyOut(BaseModel):
    id: str
    name: str
    service: str
    type: KeyType
    prefix: str
    scopes: list[str]
    lanes: list[str] | None
    rate_limit: str | None
    has_callback: bool
    created_at: datetime
    revoked_at: datetime | None = Field(description="in the future: a rotation's overlap ends then")
    active: bool


class NewKeyOut(KeyOut):
    key: str = Field(description="the secret, shown this once; only its hash is stored")
    replaces: str | None = None


def key_out(row: ApiKey, service: str) -> KeyOut:
    return KeyOut(
        id=row.id,
        name=row.name,
        service=service,
        type=KeyType(row.key_type),
        prefix=row.prefix,
        scopes=list(row.scopes or []),
        lanes=row.lanes,
        rate_limit=row.rate_limit,
        has_callback=row.callback_url is not None,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        active=not key_store.is_revoked(row),
    )


def _visible(caller: Caller) -> Select[ApiKey, str]:
    """Keys with their service's name: every key for the platform admin, else the caller's
    service's keys only."""
    query = select(ApiKey, Service.name).join(Service, ApiKey.service_id == Service.id)
    if caller.is_platform_admin:
        return query
    return query.where(ApiKey.service_id == caller.service.id)


def _find(session: Session, caller: Caller, key_id: str) -> tuple[ApiKey, str]:
    found = session.execute(_visible(caller).where(ApiKey.id == key_id[:36])).first()
    if found is None:
        raise NotifierError(ErrorCode.NOT_FOUND, "no such API key")
    return found.tuple()


def _owner(session: Session, caller: Caller, name: str | None) -> tuple[str, str]:
    """(id, name) of the service a new key belongs to."""
    if name is None or name == caller.service.name:
        return caller.service.id, caller.service.name
    caller.require_scope(Scope.SERVICES)
    service = registry.find(session, name)
    if service is None:
        raise field_error(ErrorCode.UNKNOWN_SERVICE, "service", f"no service {name!r}")
    return service.id, service.name


def _audit(session: Session, caller: Caller, action: AuditAction, **query: object) -> None:
    audit.record(session, audit.Actor.of_api_key(caller), action, query=dict(query))


@router.post("", status_code=201, response_model=NewKeyOut)
def create_key(body: KeyIn, caller: ApiKeyDep, session: SessionDep) -> NewKeyOut:
    caller.require_scope(Scope.KEYS)
    if body.rate_limit is not None:
        try:
            parse_rule(body.rate_limit)
        except ValueError as e:
            raise NotifierError(
                ErrorCode.VALIDATION_ERROR, f"rate_limit: {e}; use e.g. 600/minute"
            ) from e
    service_id, service_name = _owner(session, caller, body.service)
    row, plaintext = key_store.create_key(
        session,
        body.name.strip(),
        [s.value for s in body.scopes],
        [lane.value for lane in body.lanes] if body.lanes is not None else None,
        body.rate_limit,
        service_id,
        body.type,
    )
    _audit(
        session,
        caller,
        AuditAction.CREATE_KEY,
        key_id=row.id,
        name=row.name,
        service=service_name,
        type=body.type.value,
    )
    return NewKeyOut(**key_out(row, service_name).model_dump(), key=plaintext)


@router.get("", response_model=list[KeyOut])
def list_keys(caller: ApiKeyDep, session: SessionDep) -> list[KeyOut]:
    caller.require_scope(Scope.KEYS)
    rows = session.execute(_visible(caller).order_by(ApiKey.created_at.desc(), ApiKey.id))
    return [key_out(row, service) for row, service in rows.tuples()]


@router.post("/{key_id}/revoke", response_model=KeyOut)
def revoke_key(key_id: str, caller: ApiKeyDep, session: SessionDep) -> KeyOut:
    caller.require_scope(Scope.KEYS)
    row, service = _find(session, caller, key_id)
    if key_store.is_revoked(row):
        raise NotifierError(ErrorCode.CONFLICT, "the key is already revoked")
    key_store.revoke_key(session, row.id)
    _audit(session, caller, AuditAction.REVOKE_KEY, key_id=row.id, name=row.name)
    return key_out(row, service)


@router.post("/{key_id}/rotate", status_code=201, response_model=NewKeyOut)
def rotate_key(key_id: str, body: RotateIn, caller: ApiKeyDep, session: SessionDep) -> NewKeyOut:
    caller.require_scope(Scope.KEYS)
    row, service = _find(session, caller, key_id)
    if key_store.is_revoked(row):
        raise NotifierError(ErrorCode.CONFLICT, "a revoked key cannot be rotated")
    if row.revoked_at is not None and row.revoked_at > utcnow():
        raise NotifierError(
            ErrorCode.CONFLICT, "the key is already being rotated (its overlap has not ended)"
        )
    new, plaintext = key_store.rotate_key(session, row, timedelta(seconds=body.overlap_seconds))
    _audit(
        session,
        caller,
        AuditAction.ROTATE_KEY,
        key_id=row.id,
        new_key_id=new.id,
        overlap_seconds=body.overlap_seconds,
    )
    return NewKeyOut(**key_out(new, service).model_dump(), key=plaintext, replaces=row.id)
