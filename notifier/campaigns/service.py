"""Campaign rules: creation (promotional lanes only), schedule changes, pause, resume, cancel.

Pause, resume and cancel take effect within seconds, for as long as a run has anything left to
send (a throttled run stays ``running`` until its last message is released): the run's fan-out
checks the run status with every chunk (a compare-and-set on its cursor), and the notifications
it already produced but nobody sent yet are held (``scheduled`` with ``not_before`` at
:data:`HELD`, which neither the sweeper nor a worker's claim will touch), released on resume
(with an event and a status reason that says so; a throttled run's send times move by the
length of the pause, so the throttle still holds), cancelled on cancel.
"""

from __future__ import annotations

from datetime import datetime

from croniter import croniter
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from notifier import reasons
from notifier.campaigns import archive, beat_sync, contacts, runs, throttle
from notifier.campaigns.models import HELD, Campaign, CampaignRun, CampaignStatus, RunStatus
from notifier.campaigns.schemas import (
    CampaignIn,
    CampaignPatch,
    QuietHoursIn,
    ScheduleIn,
)
from notifier.content.quiet_hours import valid_timezone
from notifier.content.templates import get_template, get_version
from notifier.db.models import utcnow
from notifier.errors import ErrorCode, ErrorDetail, NotifierError, field_error
from notifier.keys import Caller
from notifier.notifications import queries, repository
from notifier.ownership import ALL_SERVICES, visible
from notifier.runtime import Runtime
from notifier.statuses import EventKind, Status
from providers.interface import Category, Lane

LANE_NOT_PROMOTIONAL = "campaign_lane_not_promotional"


def refuse_transactional(lane: Lane) -> None:
    if lane.category != Category.PROMOTIONAL:
        message = (
            f"campaigns run only on promotional lanes; {lane.value} is transactional "
            f"(use {lane.channel.value}.promotional)"
        )
        raise NotifierError(
            ErrorCode.VALIDATION_ERROR,
            message,
            [ErrorDetail(field="lane", message=message, code=LANE_NOT_PROMOTIONAL)],
        )


def _check_schedule(schedule: ScheduleIn | None) -> None:
    if schedule is None:
        return
    if bool(schedule.at) == bool(schedule.cron):
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "schedule",
            "give exactly one of schedule.at and schedule.cron",
        )
    if not valid_timezone(schedule.timezone):
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "schedule.timezone",
            f"unknown timezone {schedule.timezone!r}",
        )
    if schedule.cron and (len(schedule.cron.split()) != 5 or not croniter.is_valid(schedule.cron)):
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "schedule.cron",
            "not a cron expression of five fields (minute hour day month weekday)",
        )


def _check_quiet(quiet: QuietHoursIn) -> None:
    if quiet.timezone and not valid_timezone(quiet.timezone):
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "quiet_hours.timezone",
            f"unknown timezone {quiet.timezone!r}",
        )


def _apply_schedule(campaign: Campaign, schedule: ScheduleIn | None) -> None:
    campaign.send_at = schedule.at if schedule else None
    campaign.cron = schedule.cron if schedule else None
    campaign.timezone = schedule.timezone if schedule else "UTC"


def _apply_quiet(campaign: Campaign, quiet: QuietHoursIn) -> None:
    campaign.quiet_hours = quiet.enabled
    campaign.quiet_start, campaign.quiet_end = quiet.start, quiet.end
    campaign.quiet_timezone = quiet.timezone


def create(runtime: Runtime, session: Session, caller: Caller, body: CampaignIn) -> Campaign:
    refuse_transactional(body.lane)
    caller.require_lane(body.lane)
    _check_schedule(body.schedule)
    _check_quiet(body.quiet_hours)
    # the campaign is the caller's service's, and so are the template and audience it names
    # (a platform admin's too: another service's of the same name is a 404, never borrowed)
    scope = caller.service.id
    template = get_template(session, body.template, scope)
    if template.channel != body.lane.channel.value:
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "template",
            f"template {body.template!r} is for {template.channel}; the lane is {body.lane.value}",
        )
    get_version(session, template, body.template_version)
    audience = contacts.get_audience(session, body.audience, scope)
    archive.refuse_archived("template", template.name, template.archived_at)
    archive.refuse_archived("audience", audience.name, audience.archived_at)
    now = utcnow()
    campaign = Campaign(
        name=body.name,
        api_key_id=caller.id,
        service_id=caller.service.id,
        test=caller.is_test,
        template_name=body.template,
        template_version=body.template_version,
        audience_id=audience.id,
        lane=body.lane.value,
        status=(CampaignStatus.SCHEDULED if body.schedule else CampaignStatus.DRAFT).value,
        throttle_per_minute=body.throttle_per_minute,
        data=body.data,
        created_at=now,
        updated_at=now,
    )
    _apply_schedule(campaign, body.schedule)
    _apply_quiet(campaign, body.quiet_hours)
    session.add(campaign)
    session.flush()
    session.commit()  # beat's entry is written in its own transaction, after ours
    beat_sync.sync(runtime.engine, campaign)
    return campaign


def get(
    session: Session, campaign_id: str, *, lock: bool = False, scope: str | None = ALL_SERVICES
) -> Campaign:
    """The campaign, within ``scope`` (another service's is the same 404 as a missing one)."""
    campaign = session.get(Campaign, campaign_id, with_for_update=lock)
    if campaign is None or not visible(campaign.service_id, scope):
        raise NotifierError(ErrorCode.NOT_FOUND, "no such campaign")
    return campaign


def get_live(session: Session, campaign_id: str, *, lock: bool = False) -> Campaign:
    """The campaign, for a change: an archived campaign is read-only."""
    campaign = get(session, campaign_id, lock=lock)
    archive.refuse_archived("campaign", campaign.name, campaign.archived_at)
    return campaign


def patch(runtime: Runtime, session: Session, campaign_id: str, body: CampaignPatch) -> Campaign:
    campaign = get_live(session, campaign_id, lock=True)
    if campaign.status in (CampaignStatus.COMPLETED.value, CampaignStatus.CANCELLED.value):
        raise NotifierError(ErrorCode.CONFLICT, f"the campaign is {campaign.status}")
    fields = body.model_fields_set
    if "schedule" in fields:
        _check_schedule(body.schedule)
        _apply_schedule(campaign, body.schedule)
        if campaign.status == CampaignStatus.DRAFT.value and body.schedule:
            campaign.status = CampaignStatus.SCHEDULED.value
        elif campaign.status == CampaignStatus.SCHEDULED.value and not body.schedule:
            campaign.status = CampaignStatus.DRAFT.value
    if body.quiet_hours is not None:
        _check_quiet(body.quiet_hours)
        _apply_quiet(campaign, body.quiet_hours)
    if "template_version" in fields:
        get_version(
            session,
            get_template(session, campaign.template_name, campaign.service_id),
            body.template_version,
        )
        campaign.template_version = body.template_version
    for name in ("name", "throttle_per_minute", "data"):
        if name in fields and (getattr(body, name) is not None or name == "throttle_per_minute"):
            setattr(campaign, name, getattr(body, name))
    campaign.updated_at = utcnow()
    session.commit()
    beat_sync.sync(runtime.engine, campaign)
    return campaign


def run_now(runtime: Runtime, session: Session, campaign_id: str) -> str:
    campaign = get_live(session, campaign_id)
    if campaign.status not in (CampaignStatus.DRAFT.value, *runs.ACTIVE):
        raise NotifierError(ErrorCode.CONFLICT, f"the campaign is {campaign.status}")
    if campaign.status == CampaignStatus.DRAFT.value:
        campaign.status = CampaignStatus.SCHEDULED.value
    session.commit()
    run_id = runs.start_run(runtime, campaign_id, utcnow().replace(microsecond=0))
    if run_id is None:
        raise NotifierError(ErrorCode.CONFLICT, "a run of this campaign started this second")
    return run_id


def pause(runtime: Runtime, session: Session, campaign_id: str) -> Campaign:
    campaign = get(session, campaign_id, lock=True)
    if campaign.status not in runs.ACTIVE:
        raise NotifierError(ErrorCode.CONFLICT, f"a {campaign.status} campaign cannot be paused")
    now = utcnow()
    campaign.status, campaign.updated_at = CampaignStatus.PAUSED.value, now
    _set_runs(session, campaign.id, [RunStatus.RUNNING], RunStatus.PAUSED, now)
    repository.move_matching(  # queued ones move to scheduled, scheduled ones are held
        session,
        [
            *queries.of_runs(_run_ids(session, campaign.id)),
            queries.held(HELD, is_held=False),
        ],
        Status.SCHEDULED,
        (EventKind.SCHEDULED, reasons.held().text),
        include_target=True,
        **reasons.held().columns(),
        not_before=HELD,
    )
    session.commit()
    beat_sync.sync(runtime.engine, campaign)
    return campaign


def resume(runtime: Runtime, session: Session, campaign_id: str) -> Campaign:
    campaign = get_live(session, campaign_id, lock=True)
    if campaign.status != CampaignStatus.PAUSED.value:
        raise NotifierError(ErrorCode.CONFLICT, f"a {campaign.status} campaign is not paused")
    now = utcnow()
    paused = {
        r.id: r.paused_at
        for r in session.scalars(
            select(CampaignRun).where(
                CampaignRun.campaign_id == campaign.id,
                CampaignRun.status == RunStatus.PAUSED.value,
            )
        )
    }
    resumed = _set_runs(session, campaign.id, [RunStatus.PAUSED], RunStatus.RUNNING, now)
    run_ids = _run_ids(session, campaign.id)
    held_runs = queries.references(session, [*queries.of_runs(run_ids), queries.held(HELD)])
    if campaign.throttle_per_minute:
        for run_id in resumed:
            throttle.shift(session, run_id, paused.get(run_id), now, campaign.throttle_per_minute)
    repository.move_matching(  # the hold is released: they stay scheduled
        session,
        [*queries.of_runs(run_ids), queries.held(HELD)],
        Status.SCHEDULED,
        (EventKind.SCHEDULED, reasons.released().text),
        include_target=True,
        **reasons.released().columns(),
        not_before=None,
    )
    has_runs = bool(resumed) or bool(
        session.scalar(
            select(func.count())
            .select_from(CampaignRun)
            .where(
                CampaignRun.campaign_id == campaign.id,
                CampaignRun.status == RunStatus.RUNNING.value,
            )
        )
    )
    campaign.status = (CampaignStatus.RUNNING if has_runs else CampaignStatus.SCHEDULED).value
    campaign.updated_at = now
    session.commit()
    beat_sync.sync(runtime.engine, campaign)
    for run_id in sorted(set(resumed) | held_runs):
        runs.enqueue_run(runtime, run_id)
    return campaign


def cancel(runtime: Runtime, session: Session, campaign_id: str) -> Campaign:
    campaign = get(session, campaign_id, lock=True)
    if campaign.status == CampaignStatus.CANCELLED.value:  # completed: cancels what is pending
        raise NotifierError(ErrorCode.CONFLICT, "the campaign is already cancelled")
    now = utcnow()
    campaign.status, campaign.updated_at = CampaignStatus.CANCELLED.value, now
    _set_runs(session, campaign.id, [RunStatus.RUNNING, RunStatus.PAUSED], RunStatus.CANCELLED, now)
    cancelled = reasons.cancelled("the campaign was cancelled")
    repository.move_matching(
        session,
        queries.of_runs(_run_ids(session, campaign.id)),
        Status.CANCELLED,
        (EventKind.CANCELLED, cancelled.text),
        **cancelled.columns(),
        completed_at=now,
    )
    session.commit()
    beat_sync.sync(runtime.engine, campaign)
    return campaign


def _set_runs(
    session: Session, campaign_id: str, current: list[RunStatus], target: RunStatus, now: datetime
) -> list[str]:
    values: dict[str, object] = {"status": target.value, "heartbeat_at": now}
    if target == RunStatus.CANCELLED:
        values["finished_at"] = now
    if target == RunStatus.PAUSED:
        values["paused_at"] = now
    return list(
        session.scalars(
            update(CampaignRun)
            .where(
                CampaignRun.campaign_id == campaign_id,
                CampaignRun.status.in_([s.value for s in current]),
            )
            .values(**values)
            .returning(CampaignRun.id),
            execution_options={"synchronize_session": False},
        )
    )


def _run_ids(session: Session, campaign_id: str) -> list[str]:
    return list(
        session.scalars(select(CampaignRun.id).where(CampaignRun.campaign_id == campaign_id))
    )
