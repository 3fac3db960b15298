"""Services over the API, for the platform team (scope ``services:manage``, a platform-admin
scope: give it to few keys). The CLI (``notifier services ...``) does the same on the host.

    POST   /v1/services                          {"name": "billing", ...} -> 201 (trial mode
                                                 unless "trial": false)
    GET    /v1/services                          every service
    GET    /v1/services/{name}                   one service
    PATCH  /v1/services/{name}                   change the settings it names
    GET    /v1/services/{name}/allowed-recipients
    POST   /v1/services/{name}/allowed-recipients    {"channel": "email", "recipient": "..."}
    DELETE /v1/services/{name}/allowed-recipients/{entry_id}

Settings are checked against the platform's configuration (notifier/services/rules.py); a
callback URL answers with its new signing secret once. Changes reach requests within the
authentication cache's few seconds.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from notifier.api.deps import ApiKeyDep, RuntimeDep, SessionDep
from notifier.keys import Caller, Scope, callback_sealer
from notifier.services import registry
from notifier.services.models import AllowedRecipient
from notifier.services.platform import load_platform
from notifier.services.schemas import (
    AllowedIn,
    AllowedOut,
    ServiceChanges,
    ServiceCreatedOut,
    ServiceIn,
    ServiceOut,
)

router = APIRouter(prefix="/v1/services", tags=["services"])


def _admin(caller: Caller) -> None:
    caller.require_scope(Scope.SERVICES)


def _allowed_out(entry: AllowedRecipient) -> AllowedOut:
    return AllowedOut(
        id=entry.id, channel=entry.channel, recipient=entry.recipient, created_at=entry.created_at
    )


@router.post("", status_code=201, response_model=ServiceCreatedOut)
def create_service(
    body: ServiceIn, caller: ApiKeyDep, session: SessionDep, runtime: RuntimeDep
) -> ServiceCreatedOut:
    _admin(caller)
    changes = ServiceChanges.model_validate(body.model_dump(exclude={"name"}, exclude_unset=True))
    row, secret = registry.create(
        session,
        body.name,
        changes,
        load_platform(runtime.settings),
        callback_sealer(runtime.settings.secret_key),
    )
    return ServiceCreatedOut(**registry.describe(row).model_dump(), callback_secret=secret)


@router.get("", response_model=list[ServiceOut])
def list_services(caller: ApiKeyDep, session: SessionDep) -> list[ServiceOut]:
    _admin(caller)
    return [registry.describe(row) for row in registry.list_services(session)]


@router.get("/{name}", response_model=ServiceOut)
def get_service(name: str, caller: ApiKeyDep, session: SessionDep) -> ServiceOut:
    _admin(caller)
    return registry.describe(registry.get(session, name))


@router.patch("/{name}", response_model=ServiceCreatedOut)
def update_service(
    name: str, body: ServiceChanges, caller: ApiKeyDep, session: SessionDep, runtime: RuntimeDep
) -> ServiceCreatedOut:
    _admin(caller)
    row = registry.get(session, name)
    secret = registry.apply(
        row, body, load_platform(runtime.settings), callback_sealer(runtime.settings.secret_key)
    )
    return ServiceCreatedOut(**registry.describe(row).model_dump(), callback_secret=secret)


@router.get("/{name}/allowed-recipients", response_model=list[AllowedOut])
def list_allowed(name: str, caller: ApiKeyDep, session: SessionDep) -> list[AllowedOut]:
    _admin(caller)
    return [_allowed_out(e) for e in registry.allowed(session, registry.get(session, name))]


@router.post("/{name}/allowed-recipients", status_code=201, response_model=AllowedOut)
def add_allowed(name: str, body: AllowedIn, caller: ApiKeyDep, session: SessionDep) -> AllowedOut:
    _admin(caller)
    row = registry.get(session, name)
    return _allowed_out(registry.allow(session, row, body.channel, body.recipient))


@router.delete("/{name}/allowed-recipients/{entry_id}", status_code=204)
def remove_allowed(name: str, entry_id: int, caller: ApiKeyDep, session: SessionDep) -> Response:
    _admin(caller)
    registry.disallow(session, registry.get(session, name), entry_id)
    return Response(status_code=204)
