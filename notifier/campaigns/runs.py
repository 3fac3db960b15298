"""Campaign runs: fired once, fanned out in chunks, resumable after a crash.

* :func:`fire` is what beat's entry calls. It works out which occurrence is due (the latest cron
  time, in the campaign's timezone, at most :data:`FIRE_TOLERANCE` ahead; or the one-off time)
  and inserts the run row, unique on (campaign, run_at): two beat processes firing the same
  occurrence create one run; the second insert fails and is ignored.
* :func:`fan_out` walks the audience keyset-paginated on contact id, :data:`CHUNK` contacts at a
  time. Each chunk's notifications, their first events and the run's cursor and counters are
  written in one transaction, and the cursor moves with a compare-and-set (``cursor = old AND
  status = 'running'``): a run that crashed resumes after the last committed chunk, two tasks
  working on the same run cannot both write a chunk, and a paused or cancelled run stops at the
  next chunk. Queued notifications are published after commit, many ids per task; a publish lost
  in a crash is re-published by the sweeper.
* :func:`resume_stalled` (on beat) re-enqueues runs whose worker died mid-run.
* A run is ``completed`` only when every recipient has been queued (or settled: suppressed,
  failed) and nothing of it is held back. A throttled run fans out in a second but holds most of
  its messages as ``scheduled`` for minutes or hours; it stays ``running`` (so it can be paused,
  resumed and cancelled throughout) until :func:`settle`, on beat, sees the last one released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notifier.campaigns import completion
from notifier.campaigns import contacts as contact_store
from notifier.campaigns.fanout import Chunk, RunContext, addresses, build_chunk
from notifier.campaigns.models import (
    AudienceMember,
    Campaign,
    CampaignRun,
    CampaignStatus,
    Contact,
    RunStatus,
)
from notifier.content import quiet_hours
from notifier.content.templates import (
    ResolvedTemplate,
    get_template,
    get_version,
    resolve_version,
)
from notifier.content.unsubscribe import UnsubscribeTokens
from notifier.db.models import utcnow
from notifier.db.session import affected, transaction
from notifier.notifications import listing, queries, repository
from notifier.notifications.rows import event
from notifier.runtime import Runtime
from notifier.statuses import EventKind, Status
from notifier.tasks import CAMPAIGNS, CAMPAIGNS_RUN, enqueue
from providers.interface import Lane

log = logging.getLogger("notifier.campaigns")

CHUNK = 2000
FIRE_TOLERANCE = timedelta(seconds=30)
STALLED_AFTER = timedelta(seconds=60)
ACTIVE = (CampaignStatus.SCHEDULED.value, CampaignStatus.RUNNING.value)


class _Lost(Exception):
    """Another task moved the cursor, or the run was paused or cancelled: stop."""


# --------------------------------------------------------------------------- firing


def due_occurrence(campaign: Campaign, now: datetime) -> datetime | None:
    """The occurrence of the campaign's schedule that is due at ``now`` (UTC), if any."""
    if campaign.cron:
        local = (now + FIRE_TOLERANCE).astimezone(ZoneInfo(campaign.timezone or "UTC"))
        previous: datetime = croniter(campaign.cron, local).get_prev(datetime)
        return previous.astimezone(UTC).replace(microsecond=0)
    if campaign.send_at is not None and campaign.send_at <= now + FIRE_TOLERANCE:
        return campaign.send_at
    return None


def fire(runtime: Runtime, campaign_id: str, now: datetime | None = None) -> str | None:
    """Start the run that is due now, once. Returns its id, or None when nothing was started."""
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status not in ACTIVE:
            return None
        run_at = due_occurrence(campaign, now)
    if run_at is None:
        return None
    return start_run(runtime, campaign_id, run_at)


def start_run(runtime: Runtime, campaign_id: str, run_at: datetime) -> str | None:
    """Insert the run (unique on campaign and run_at) and enqueue its fan-out."""
    try:
        with transaction(runtime.sessions) as session:
            campaign = session.get(Campaign, campaign_id, with_for_update=True)
            if campaign is None or campaign.status not in ACTIVE:
                return None
            template = get_template(session, campaign.template_name, campaign.service_id)
            version = get_version(session, template, campaign.template_version)
            now = utcnow()
            run = CampaignRun(
                campaign_id=campaign_id,
                run_at=run_at,
                status=RunStatus.RUNNING.value,
                template_version=version.version,
                total=contact_store.audience_size(session, campaign.audience_id),
                processed=0,
                created=0,
                skipped=0,
                slots=0,
                cursor=0,
                started_at=now,
                heartbeat_at=now,
            )
            session.add(run)
            session.flush()
            campaign.status = CampaignStatus.RUNNING.value
            campaign.updated_at = now
            run_id = run.id
    except IntegrityError:
        log.info("campaign.fire.duplicate", extra={"campaign_id": campaign_id})
        return None
    log.info("campaign.run.started", extra={"campaign_id": campaign_id, "run_id": run_id})
    enqueue_run(runtime, run_id)
    return run_id


def enqueue_run(runtime: Runtime, run_id: str) -> None:
    try:
        enqueue(runtime.celery, CAMPAIGNS_RUN, [run_id], CAMPAIGNS)
    except Exception as e:  # resume_stalled picks the run up
        log.warning(
            "campaign.run.publish_failed", extra={"run_id": run_id, "error": type(e).__name__}
        )


# --------------------------------------------------------------------------- fan-out


@dataclass
class FanOutReport:
    chunks: int = 0
    notifications: int = 0
    finished: bool = False


def run(runtime: Runtime, run_id: str) -> FanOutReport:
    """The run task: release what a resume un-held, then fan out what is left."""
    release_due(runtime, run_id)
    return fan_out(runtime, run_id)


def fan_out(
    runtime: Runtime,
    run_id: str,
    chunk_size: int = CHUNK,
    on_chunk: Callable[[int], None] | None = None,
) -> FanOutReport:
    report = FanOutReport()
    ctx = _context(runtime, run_id)
    if ctx is None:
        return report
    while True:
        try:
            chunk, done = _one_chunk(runtime, ctx, chunk_size)
        except _Lost:
            log.info("campaign.run.stopped", extra={"run_id": run_id})
            return report
        if done:
            report.finished = True
            return report
        report.chunks += 1
        report.notifications += len(chunk.rows)
        queued = chunk.queued()
        if queued:
            runtime.publisher.publish(queued)
        if on_chunk is not None:
            on_chunk(report.chunks)


def _context(runtime: Runtime, run_id: str) -> RunContext | None:
    with transaction(runtime.sessions) as session:
        run_row = session.get(CampaignRun, run_id)
        if run_row is None or run_row.status != RunStatus.RUNNING.value:
            return None
        campaign = session.get(Campaign, run_row.campaign_id)
        if campaign is None:  # a run's campaign is a foreign key: it cannot be gone
            raise LookupError(f"campaign {run_row.campaign_id} of run {run_row.id} is missing")
        template = get_template(session, campaign.template_name, campaign.service_id)
        version = get_version(session, template, run_row.template_version)
        session.expunge_all()
    resolved: dict[str, ResolvedTemplate] = {}

    def pick(locale: str | None) -> ResolvedTemplate:
        key = locale or ""
        if key not in resolved:
            resolved[key] = resolve_version(template, version, locale)
        return resolved[key]

    settings = runtime.settings
    return RunContext(
        campaign=campaign,
        run=run_row,
        lane=Lane(campaign.lane),
        pick=pick,
        tokens=UnsubscribeTokens(settings.secret_key, settings.public_url),
        ttl=timedelta(seconds=settings.default_ttl_seconds),
        hours=quiet_hours.QuietHours.parse(campaign.quiet_start, campaign.quiet_end)
        if campaign.quiet_hours
        else None,
        throttle_interval=60.0 / campaign.throttle_per_minute
        if campaign.throttle_per_minute
        else None,
        settings=settings,
    )


def _one_chunk(runtime: Runtime, ctx: RunContext, size: int) -> tuple[Chunk, bool]:
    with transaction(runtime.sessions) as session:
        state = session.execute(
            select(CampaignRun.cursor, CampaignRun.slots, CampaignRun.status).where(
                CampaignRun.id == ctx.run.id
            )
        ).one()
        if state.status != RunStatus.RUNNING.value:
            raise _Lost
        members = list(
            session.scalars(
                select(Contact)
                .join(AudienceMember, AudienceMember.contact_id == Contact.id)
                .where(
                    AudienceMember.audience_id == ctx.campaign.audience_id,
                    AudienceMember.contact_id > state.cursor,
                )
                .order_by(AudienceMember.contact_id)
                .limit(size)
            )
        )
        now = utcnow()
        if not members:
            _finish(session, ctx, state.cursor, now)
            return Chunk(), True
        channel = ctx.lane.channel
        pairs = {(channel.value, r) for c in members for r, _ in addresses(c, channel)}
        suppressions = repository.active_suppressions(session, pairs)
        chunk = build_chunk(ctx, members, suppressions, now, state.slots)
        moved = affected(
            session.execute(
                update(CampaignRun)
                .where(
                    CampaignRun.id == ctx.run.id,
                    CampaignRun.cursor == state.cursor,
                    CampaignRun.status == RunStatus.RUNNING.value,
                )
                .values(
                    cursor=members[-1].id,
                    processed=CampaignRun.processed + len(members),
                    created=CampaignRun.created + len(chunk.rows),
                    skipped=CampaignRun.skipped + chunk.skipped,
                    slots=CampaignRun.slots + chunk.slots,
                    heartbeat_at=now,
                ),
                execution_options={"synchronize_session": False},
            )
        )
        if moved != 1:
            session.rollback()
            raise _Lost
        repository.insert_notifications(session, chunk.rows, chunk.events)
    return chunk, False


def _finish(session: Session, ctx: RunContext, cursor: int, now: datetime) -> None:
    """The fan-out reached the end of the audience: record it, and complete the run if nothing
    of it is held back (a throttled or quiet-hours run completes later, in :func:`settle`)."""
    moved = affected(
        session.execute(
            update(CampaignRun)
            .where(
                CampaignRun.id == ctx.run.id,
                CampaignRun.cursor == cursor,
                CampaignRun.status == RunStatus.RUNNING.value,
            )
            .values(fanned_out_at=func.coalesce(CampaignRun.fanned_out_at, now), heartbeat_at=now),
            execution_options={"synchronize_session": False},
        )
    )
    if moved != 1:
        raise _Lost
    log.info("campaign.run.fanned_out", extra={"run_id": ctx.run.id})
    completion.complete_if_settled(session, ctx.run.id, now)


# --------------------------------------------------------------------------- safety nets


def release_due(runtime: Runtime, run_id: str, limit: int = 1000) -> int:
    """Publish this run's scheduled notifications that are due and not held (after a resume)."""
    released = 0
    while True:
        now = utcnow()
        with transaction(runtime.sessions) as session:
            rows = queries.find(session, queries.of_run_due(run_id, now), limit)
            lanes = {r.id: r.lane for r in rows}
            moved = repository.move(session, list(lanes), Status.QUEUED, published_at=now)
            detail = "released: the campaign was resumed"
            events = [event(i, EventKind.QUEUED, Status.QUEUED, detail, now) for i in moved]
            repository.add_events(session, events)
        if moved:
            runtime.publisher.publish([(i, lanes[i]) for i in moved])
        released += len(moved)
        if len(rows) < limit:
            return released


def resume_stalled(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """Re-enqueue running runs whose heartbeat stopped (their worker died mid-run)."""
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        stalled = completion.running_runs(
            session,
            CampaignRun.fanned_out_at.is_(None),
            CampaignRun.heartbeat_at < now - STALLED_AFTER,
        )
        if stalled:
            session.execute(
                update(CampaignRun).where(CampaignRun.id.in_(stalled)).values(heartbeat_at=now),
                execution_options={"synchronize_session": False},
            )
    for run_id in stalled:
        log.warning("campaign.run.resumed_stalled", extra={"run_id": run_id})
        enqueue_run(runtime, run_id)
    return stalled


def progress(session: Session, run_id: str) -> dict[str, int]:
    """Notifications of a run by status."""
    return listing.status_counts(session, listing.Filters(reference=run_id))
