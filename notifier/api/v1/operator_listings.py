"""Listings and lifecycle of campaign objects for operators without the console (scope
``campaigns:manage``), keyset-paginated like the notification listings (``cursor`` from the
previous page's ``next_cursor``; a cursor this API did not issue is 422 ``invalid_cursor``).

    GET  /v1/templates                 newest first; archived only with include_archived=true
    GET  /v1/audiences                 newest first; archived only with include_archived=true
    GET  /v1/audiences/{name}/contacts by contact id
    GET  /v1/imports                   newest first; ?audience= to narrow
    GET  /v1/campaigns/{id}/runs       newest first
    POST /v1/templates/{name}/archive, /v1/audiences/{name}/archive, /v1/campaigns/{id}/archive
    DELETE /v1/contacts/{key}

What archiving means and when it is refused: :mod:`notifier.campaigns.archive`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.api.deps import RuntimeDep, SessionDep
from notifier.api.v1.campaigns import (
    OwnedAudience,
    OwnedCampaign,
    OwnedTemplate,
    ScopeDep,
    _audience_out,
    _contact_out,
    _import_out,
    _template_out,
)
from notifier.campaigns import archive, contacts, views
from notifier.campaigns.models import (
    Audience,
    AudienceMember,
    CampaignRun,
    Contact,
    ContactImport,
)
from notifier.campaigns.schemas import (
    AudienceOut,
    CampaignOut,
    ContactOut,
    ImportOut,
    RunOut,
    TemplateOut,
)
from notifier.content import templates
from notifier.content.models import Template
from notifier.errors import ErrorCode, field_error
from notifier.notifications.listing import newest_first
from notifier.ownership import owned

router = APIRouter(prefix="/v1", tags=["campaigns"])

T = TypeVar("T")
A = TypeVar("A", Template, Audience)
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=500)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass
class ArchivableQuery:
    """The query of a listing of archivable objects (templates, audiences)."""

    include_archived: bool = False
    cursor: Cursor = None
    limit: Limit = 50

    def page(
        self, session: Session, model: type[A], scope: str | None
    ) -> tuple[list[A], str | None]:
        """A page of ``scope``'s rows newest first; the archived ones only when asked."""
        stmt = select(model).where(*owned(model.service_id, scope))
        if not self.include_archived:
            stmt = stmt.where(model.archived_at.is_(None))
        return newest_first(session, stmt, model.created_at, model.id, self.cursor, self.limit)


ArchivableQueryDep = Annotated[ArchivableQuery, Depends()]


@router.get("/templates", response_model=Page[TemplateOut])
def list_templates(
    scope: ScopeDep, session: SessionDep, query: ArchivableQueryDep
) -> Page[TemplateOut]:
    rows, next_cursor = query.page(session, Template, scope)
    items = [_template_out(t, templates.get_version(session, t, None)) for t in rows]
    return Page[TemplateOut](items=items, next_cursor=next_cursor)


@router.get("/audiences", response_model=Page[AudienceOut])
def list_audiences(
    scope: ScopeDep, session: SessionDep, query: ArchivableQueryDep
) -> Page[AudienceOut]:
    rows, next_cursor = query.page(session, Audience, scope)
    return Page[AudienceOut](
        items=[_audience_out(session, a) for a in rows], next_cursor=next_cursor
    )


@router.get("/audiences/{name}/contacts", response_model=Page[ContactOut])
def list_audience_contacts(
    name: str,
    audience: OwnedAudience,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ContactOut]:
    if cursor is not None and not cursor.isdigit():
        raise field_error(ErrorCode.INVALID_CURSOR, "cursor", "cursor is not one this API returned")
    stmt = (
        select(Contact)
        .join(AudienceMember, AudienceMember.contact_id == Contact.id)
        .where(AudienceMember.audience_id == audience.id)
    )
    if cursor is not None:
        stmt = stmt.where(Contact.id > int(cursor))
    rows = list(session.scalars(stmt.order_by(Contact.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[ContactOut](
        items=[_contact_out(c) for c in rows], next_cursor=str(rows[-1].id) if more else None
    )


@router.get("/imports", response_model=Page[ImportOut])
def list_imports(
    scope: ScopeDep,
    session: SessionDep,
    audience: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ImportOut]:
    audiences = select(Audience.id).where(*owned(Audience.service_id, scope))
    stmt = select(ContactImport).where(ContactImport.audience_id.in_(audiences.scalar_subquery()))
    if audience:
        found = contacts.get_audience(session, audience, scope)
        stmt = stmt.where(ContactImport.audience_id == found.id)
    rows, next_cursor = newest_first(
        session, stmt, ContactImport.started_at, ContactImport.id, cursor, limit
    )
    names = dict(session.execute(select(Audience.id, Audience.name)).all()) if rows else {}
    return Page[ImportOut](
        items=[_import_out(j, names.get(j.audience_id, "")) for j in rows], next_cursor=next_cursor
    )


@router.get("/campaigns/{campaign_id}/runs", response_model=Page[RunOut])
def list_runs(
    campaign_id: str,
    _: OwnedCampaign,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[RunOut]:
    stmt = select(CampaignRun).where(CampaignRun.campaign_id == campaign_id)
    rows, next_cursor = newest_first(
        session, stmt, CampaignRun.run_at, CampaignRun.id, cursor, limit
    )
    return Page[RunOut](items=[views.run_out(session, r) for r in rows], next_cursor=next_cursor)


@router.post("/templates/{name}/archive", response_model=TemplateOut)
def archive_template(template: OwnedTemplate, session: SessionDep) -> TemplateOut:
    archive.archive_template(session, template)
    return _template_out(template, templates.get_version(session, template, None))


@router.post("/audiences/{name}/archive", response_model=AudienceOut)
def archive_audience(audience: OwnedAudience, session: SessionDep) -> AudienceOut:
    return _audience_out(session, archive.archive_audience(session, audience))


@router.post("/campaigns/{campaign_id}/archive", response_model=CampaignOut)
def archive_campaign(
    campaign_id: str, _: OwnedCampaign, runtime: RuntimeDep, session: SessionDep
) -> CampaignOut:
    return views.campaign_out(session, archive.archive_campaign(runtime, session, campaign_id))


@router.delete("/contacts/{key}", status_code=204)
def delete_contact(key: str, scope: ScopeDep, session: SessionDep) -> Response:
    archive.delete_contact(session, key, scope)
    return Response(status_code=204)
