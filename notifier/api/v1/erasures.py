"""``POST /v1/erasures``: erase a person's personal data for a data-protection request (scope
``data:erase``, an admin scope). What is erased and what is kept: :mod:`notifier.erasure`.

    POST /v1/erasures  {"emails": ["ada@example.com"], "phones": ["+447911123456"],
                        "request_reference": "DSR-2026-118"}
    -> 200 {"erased": {"notifications": 12, "contacts": 1, ...}}

Addresses are normalised like intake (an email in any case; a phone in E.164), so the call
finds what intake stored; a malformed one is 422 and nothing is erased. The call is idempotent:
repeating it finds nothing more and erases nothing more.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from notifier import erasure
from notifier.api.deps import ApiKeyDep, RuntimeDep, SessionDep
from notifier.errors import NotifierError, field_error
from notifier.keys import Scope
from notifier.recipients import normalise_email, normalise_phone
from notifier.support import audit
from notifier.support.models import AuditAction

router = APIRouter(prefix="/v1/erasures", tags=["erasures"])

Many: list[str] = Field(default_factory=list, max_length=50)


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emails: list[str] = Many
    phones: list[str] = Field(default_factory=list, max_length=50, description="E.164")
    push_tokens: list[str] = Many
    contact_keys: list[str] = Many
    request_reference: str | None = Field(
        default=None, max_length=200, description="your ticket for the request; audited"
    )

    @model_validator(mode="after")
    def _someone(self) -> ErasureIn:
        if not (self.emails or self.phones or self.push_tokens or self.contact_keys):
            raise ValueError("name the person: emails, phones, push_tokens or contact_keys")
        return self


class ErasureOut(BaseModel):
    erased: dict[str, int]


def _normalised(field: str, normalise: Callable[[str], str], value: str) -> str:
    try:
        return normalise(value)
    except NotifierError as e:
        raise field_error(e.code, field, f"{value!r}: {e.message}") from e


@router.post("", response_model=ErasureOut)
def erase_person(
    body: ErasureIn, caller: ApiKeyDep, session: SessionDep, runtime: RuntimeDep
) -> ErasureOut:
    caller.require_scope(Scope.ERASE)
    person = erasure.Person(
        emails={_normalised("emails", normalise_email, e) for e in body.emails},
        phones={_normalised("phones", normalise_phone, p) for p in body.phones},
        push_tokens={t.strip() for t in body.push_tokens if t.strip()},
        contact_keys={k.strip() for k in body.contact_keys if k.strip()},
    )
    outbox = runtime.settings.outbox_dir
    result = erasure.erase(session, person, outbox if outbox.exists() else None)
    audit.record(
        session,
        audit.Actor.of_api_key(caller),
        AuditAction.ERASE,
        query={"request_reference": body.request_reference, **result.as_dict()},
    )
    return ErasureOut(erased=result.as_dict())
