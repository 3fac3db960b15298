"""Templates, contacts, audiences, imports and campaigns (scope ``campaigns:manage``)."""

from __future__ import annotations

import re
import tempfile
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.api.deps import ApiKeyDep, RuntimeDep, SessionDep
from notifier.campaigns import contacts, csv_import, service, views
from notifier.campaigns.models import (
    Audience,
    Campaign,
    CampaignRun,
    Contact,
    ContactImport,
)
from notifier.campaigns.schemas import (
    AudienceIn,
    AudienceOut,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    ContactIn,
    ContactOut,
    ImportOut,
    PreviewIn,
    PreviewOut,
    RunOut,
    TemplateIn,
    TemplateOut,
)
from notifier.content import templates
from notifier.content.models import Template, TemplateVersion
from notifier.content.unsubscribe import add_unsubscribe_link, preview_unsubscribe_url
from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Caller, Scope
from notifier.ownership import scope_of, visible
from providers.interface import Channel


def _manager(caller: ApiKeyDep) -> Caller:
    caller.require_scope(Scope.CAMPAIGNS)
    return caller


ManagerDep = Annotated[Caller, Depends(_manager)]


def _scope(caller: ManagerDep) -> str | None:
    return scope_of(caller)


ScopeDep = Annotated[str | None, Depends(_scope)]


# Every route with a template, an audience or a campaign in its path takes one of these: the
# object, looked up within the caller's service (another service's is a 404), before the route
# does anything with it.
def _owned_template(name: str, scope: ScopeDep, session: SessionDep) -> Template:
    return templates.get_template(session, name, scope)


def _owned_audience(name: str, scope: ScopeDep, session: SessionDep) -> Audience:
    return contacts.get_audience(session, name, scope)


def _owned_campaign(campaign_id: str, scope: ScopeDep, session: SessionDep) -> Campaign:
    return service.get(session, campaign_id, scope=scope)


OwnedTemplate = Annotated[Template, Depends(_owned_template)]
OwnedAudience = Annotated[Audience, Depends(_owned_audience)]
OwnedCampaign = Annotated[Campaign, Depends(_owned_campaign)]
router = APIRouter(prefix="/v1", tags=["campaigns"])
SPOOL_BYTES = 1_048_576


# --------------------------------------------------------------------------- templates


def _template_out(template: Template, version: TemplateVersion) -> TemplateOut:
    return TemplateOut(
        name=template.name,
        channel=template.channel,
        version=version.version,
        latest_version=template.latest_version,
        default_locale=version.default_locale,
        variants=version.variants,
        created_at=version.created_at,
        archived_at=template.archived_at,
    )


@router.post("/templates", status_code=201, response_model=TemplateOut)
def save_template(body: TemplateIn, caller: ManagerDep, session: SessionDep) -> TemplateOut:
    version = templates.save_version(
        session, body.name, body.channel, body.locale, body.all_variants(), caller.service.id
    )
    return _template_out(templates.get_template(session, body.name, caller.service.id), version)


@router.get("/templates/{name}", response_model=TemplateOut)
def get_template(
    template: OwnedTemplate, session: SessionDep, version: int | None = None
) -> TemplateOut:
    return _template_out(template, templates.get_version(session, template, version))


@router.get("/templates/{name}/versions", response_model=list[TemplateOut])
def template_versions(template: OwnedTemplate, session: SessionDep) -> list[TemplateOut]:
    return [_template_out(template, v) for v in templates.versions_of(session, template)]


@router.post("/templates/{name}/preview", response_model=PreviewOut)
def preview_template(
    body: PreviewIn, template: OwnedTemplate, session: SessionDep, runtime: RuntimeDep
) -> PreviewOut:
    """Render as a campaign would: an email gets a placeholder ``unsubscribe_url`` (a real one
    is signed per recipient at fan-out) and the same unsubscribe footer when the template has
    no link of its own."""
    version = templates.get_version(session, template, body.version)
    resolved = templates.resolve_version(template, version, body.locale)
    data = dict(body.data)
    url = None
    if resolved.channel == Channel.EMAIL:
        url = data.setdefault("unsubscribe_url", preview_unsubscribe_url(runtime.settings))
    rendered = templates.render(resolved, data)
    if url:
        add_unsubscribe_link(rendered.content, str(url))
    return PreviewOut.of(
        resolved.name, resolved.version, resolved.locale, resolved.channel, rendered.content
    )


# --------------------------------------------------------------------------- contacts


def _contact_out(contact: Contact) -> ContactOut:
    return ContactOut(
        key=contact.key,
        email=contact.email,
        phone=contact.phone,
        locale=contact.locale,
        timezone=contact.timezone,
        attributes=contact.attributes or {},
        push_tokens=contact.push_tokens or [],
        consent={c.value: getattr(contact, contacts.CONSENT_FIELD[c]) for c in Channel},
        updated_at=contact.updated_at,
    )


@router.put("/contacts/{key}", response_model=ContactOut)
def put_contact(key: str, body: ContactIn, caller: ManagerDep, session: SessionDep) -> ContactOut:
    record = contacts.build_record(
        key,
        email=body.email,
        phone=body.phone,
        locale=body.locale,
        timezone=body.timezone,
        attributes=body.attributes,
        push_tokens=[t.model_dump() for t in body.push_tokens]
        if body.push_tokens is not None
        else None,
        consent={c.value: v for c, v in body.consent.items()},
    )
    [contact], _created = contacts.upsert(session, caller.service.id, [record])
    for name in body.audiences:
        audience = contacts.get_or_create_audience(session, name, caller.service.id)
        contacts.add_members(session, audience, [contact])
    return _contact_out(contact)


@router.get("/contacts/{key}", response_model=ContactOut)
def get_contact(key: str, scope: ScopeDep, session: SessionDep) -> ContactOut:
    return _contact_out(contacts.get_contact(session, key, scope))


# --------------------------------------------------------------------------- audiences


def _audience_out(session: Session, audience: Audience) -> AudienceOut:
    return AudienceOut(
        id=audience.id,
        name=audience.name,
        size=contacts.audience_size(session, audience.id),
        created_at=audience.created_at,
        archived_at=audience.archived_at,
    )


@router.post("/audiences", status_code=201, response_model=AudienceOut)
def create_audience(body: AudienceIn, caller: ManagerDep, session: SessionDep) -> AudienceOut:
    audience = contacts.get_or_create_audience(session, body.name, caller.service.id)
    return _audience_out(session, audience)


@router.get("/audiences/{name}", response_model=AudienceOut)
def get_audience(audience: OwnedAudience, session: SessionDep) -> AudienceOut:
    return _audience_out(session, audience)


def _import_out(job: ContactImport, audience: str) -> ImportOut:
    return ImportOut(
        id=job.id,
        audience=audience,
        status=job.status,
        filename=job.filename,
        bytes_total=job.bytes_total,
        bytes_read=job.bytes_read,
        rows_read=job.rows_read,
        created=job.created,
        updated=job.updated,
        error_count=job.error_count,
        errors=job.errors or [],
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


# the import's body limit is NOTIFIER_MAX_IMPORT_BYTES, not the API's 1 MiB (see app.py)
IMPORT_PATH = re.compile(r"/v1/audiences/[^/]+/import")


@router.post("/audiences/{name}/import", response_model=ImportOut)
async def import_contacts(
    name: str,
    request: Request,
    caller: ApiKeyDep,
    runtime: RuntimeDep,
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> ImportOut:
    """Body: the CSV file itself (``Content-Type: text/csv``), streamed to a spool file and
    imported chunk by chunk; ``GET /v1/audiences/{name}/imports`` shows progress meanwhile.
    The audience and its contacts are the caller's service's (another service's audience of
    the same name is a different one, never touched)."""
    caller.require_scope(Scope.CAMPAIGNS)
    length = request.headers.get("content-length")
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        async for part in request.stream():
            spool.write(part)
        spool.seek(0)
        job = await run_in_threadpool(
            csv_import.start,
            runtime.sessions,
            name,
            filename,
            int(length) if length and length.isdigit() else None,
            caller.service.id,
        )
        await run_in_threadpool(csv_import.run, runtime.sessions, job, spool)
    return _import_out(job, name)


@router.get("/audiences/{name}/imports", response_model=list[ImportOut])
def list_imports(name: str, audience: OwnedAudience, session: SessionDep) -> list[ImportOut]:
    jobs = session.scalars(
        select(ContactImport)
        .where(ContactImport.audience_id == audience.id)
        .order_by(ContactImport.started_at.desc())
        .limit(50)
    )
    return [_import_out(j, name) for j in jobs]


@router.get("/imports/{import_id}", response_model=ImportOut)
def get_import(import_id: str, scope: ScopeDep, session: SessionDep) -> ImportOut:
    job = session.get(ContactImport, import_id)
    audience = session.get(Audience, job.audience_id) if job else None
    if job is None or not visible(audience.service_id if audience else None, scope):
        raise NotifierError(ErrorCode.NOT_FOUND, "no such import")
    return _import_out(job, audience.name if audience else "")


# --------------------------------------------------------------------------- campaigns


@router.post("/campaigns", status_code=201, response_model=CampaignOut)
def create_campaign(
    body: CampaignIn, caller: ManagerDep, runtime: RuntimeDep, session: SessionDep
) -> CampaignOut:
    campaign = service.create(runtime, session, caller, body)
    return views.campaign_out(session, campaign)


@router.get("/campaigns", response_model=list[CampaignOut])
def list_campaigns(
    scope: ScopeDep, session: SessionDep, include_archived: bool = False
) -> list[CampaignOut]:
    return [
        views.campaign_out(session, c, False)
        for c in views.list_campaigns(session, scope)
        if include_archived or c.archived_at is None
    ]


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign: OwnedCampaign, session: SessionDep) -> CampaignOut:
    return views.campaign_out(session, campaign)


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut)
def patch_campaign(
    campaign_id: str,
    body: CampaignPatch,
    _: OwnedCampaign,
    runtime: RuntimeDep,
    session: SessionDep,
) -> CampaignOut:
    return views.campaign_out(session, service.patch(runtime, session, campaign_id, body))


@router.post("/campaigns/{campaign_id}/run", status_code=202, response_model=RunOut)
def run_campaign_now(
    campaign_id: str, _: OwnedCampaign, runtime: RuntimeDep, session: SessionDep
) -> RunOut:
    run_id = service.run_now(runtime, session, campaign_id)
    run = session.get(CampaignRun, run_id)
    if run is None:  # run_now stored it in this session a moment ago
        raise LookupError(f"campaign run {run_id} vanished after it was started")
    return views.run_out(session, run)


@router.post("/campaigns/{campaign_id}/pause", response_model=CampaignOut)
def pause_campaign(
    campaign_id: str, _: OwnedCampaign, runtime: RuntimeDep, session: SessionDep
) -> CampaignOut:
    return views.campaign_out(session, service.pause(runtime, session, campaign_id))


@router.post("/campaigns/{campaign_id}/resume", response_model=CampaignOut)
def resume_campaign(
    campaign_id: str, _: OwnedCampaign, runtime: RuntimeDep, session: SessionDep
) -> CampaignOut:
    return views.campaign_out(session, service.resume(runtime, session, campaign_id))


@router.post("/campaigns/{campaign_id}/cancel", response_model=CampaignOut)
def cancel_campaign(
    campaign_id: str, _: OwnedCampaign, runtime: RuntimeDep, session: SessionDep
) -> CampaignOut:
    return views.campaign_out(session, service.cancel(runtime, session, campaign_id))


@router.get("/campaigns/{campaign_id}/runs/{run_id}", response_model=RunOut)
def get_run(campaign_id: str, run_id: str, _: OwnedCampaign, session: SessionDep) -> RunOut:
    run = session.get(CampaignRun, run_id)
    if run is None or run.campaign_id != campaign_id:
        raise NotifierError(ErrorCode.NOT_FOUND, "no such run of this campaign")
    return views.run_out(session, run)
