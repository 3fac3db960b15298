"""Archiving templates, audiences and campaigns, and deleting a contact.

Nothing a message was sent from is ever deleted: a notification records the template name and
version it used, and a run its campaign, so support can still read what went out. Archiving
instead hides the object from listings (``include_archived=true`` shows it), keeps it readable
by name or id, and stops new use: a new campaign cannot use an archived template or audience,
and an archived campaign cannot be run, scheduled or changed. What is still in use cannot be
archived (409): a template or audience of an unarchived campaign that may still send (draft,
scheduled, running, paused), or a scheduled, running or paused campaign itself (pause does not
count: cancel it first, so that its held messages are cancelled rather than left waiting); a
draft, completed or cancelled campaign can be archived.

Deleting a contact removes the row and its audience memberships (a data-protection request
that must erase everything goes through ``POST /v1/erasures`` instead); notifications already
sent to the contact's address keep their delivery record.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.campaigns import beat_sync, contacts
from notifier.campaigns.models import Audience, AudienceMember, Campaign, CampaignStatus
from notifier.content.models import Template
from notifier.db.models import utcnow
from notifier.errors import ErrorCode, NotifierError
from notifier.runtime import Runtime

MAY_SEND = (
    CampaignStatus.DRAFT.value,
    CampaignStatus.SCHEDULED.value,
    CampaignStatus.RUNNING.value,
    CampaignStatus.PAUSED.value,
)
ARCHIVABLE = (
    CampaignStatus.DRAFT.value,
    CampaignStatus.COMPLETED.value,
    CampaignStatus.CANCELLED.value,
)


def refuse_archived(kind: str, name: str, archived: object) -> None:
    if archived is not None:
        raise NotifierError(ErrorCode.CONFLICT, f"the {kind} {name!r} is archived")


def _users(session: Session, *condition: ColumnElement[bool]) -> list[str]:
    return list(
        session.scalars(
            select(Campaign.name).where(
                *condition, Campaign.status.in_(MAY_SEND), Campaign.archived_at.is_(None)
            )
        )
    )


def _in_use(kind: str, name: str, users: list[str]) -> None:
    if users:
        shown = ", ".join(repr(u) for u in users[:5])
        raise NotifierError(
            ErrorCode.CONFLICT,
            f"the {kind} {name!r} is used by campaigns that may still send ({shown}); "
            "cancel or finish them first",
        )


def archive_template(session: Session, template: Template) -> Template:
    name = template.name
    refuse_archived("template", name, template.archived_at)
    _in_use(  # a campaign of the template's own service: names are unique per service
        "template",
        name,
        _users(
            session,
            Campaign.service_id == template.service_id,
            Campaign.template_name == template.name,
        ),
    )
    template.archived_at = utcnow()
    return template


def archive_audience(session: Session, audience: Audience) -> Audience:
    name = audience.name
    refuse_archived("audience", name, audience.archived_at)
    _in_use("audience", name, _users(session, Campaign.audience_id == audience.id))
    audience.archived_at = utcnow()
    return audience


def archive_campaign(runtime: Runtime, session: Session, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id, with_for_update=True)
    if campaign is None:
        raise NotifierError(ErrorCode.NOT_FOUND, "no such campaign")
    refuse_archived("campaign", campaign.name, campaign.archived_at)
    if campaign.status not in ARCHIVABLE:
        raise NotifierError(
            ErrorCode.CONFLICT,
            f"a {campaign.status} campaign may still send; cancel it before archiving it",
        )
    campaign.archived_at = campaign.updated_at = utcnow()
    session.commit()
    beat_sync.sync(runtime.engine, campaign)
    return campaign


def delete_contact(session: Session, key: str, scope: str | None) -> int:
    """Delete the contact (within ``scope``) and its memberships; returns how many audiences
    it left."""
    contact = contacts.get_contact(session, key, scope)
    left = session.scalar(
        select(func.count())
        .select_from(AudienceMember)
        .where(AudienceMember.contact_id == contact.id)
    )
    session.execute(delete(AudienceMember).where(AudienceMember.contact_id == contact.id))
    session.delete(contact)
    return left or 0
