"""What the campaigns API shows of a campaign and its runs (read-only views)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.campaigns import runs
from notifier.campaigns.models import Audience, Campaign, CampaignRun
from notifier.campaigns.schemas import CampaignOut, QuietHoursIn, RunOut, RunProgress, ScheduleIn
from notifier.ownership import ALL_SERVICES, owned
from notifier.statuses import Status


def run_out(session: Session, run: CampaignRun) -> RunOut:
    counts = runs.progress(session, run.id)

    def total(*statuses: Status) -> int:
        return sum(counts.get(s.value, 0) for s in statuses)

    return RunOut(
        id=run.id,
        run_at=run.run_at,
        status=run.status,
        template_version=run.template_version,
        started_at=run.started_at,
        finished_at=run.finished_at,
        progress=RunProgress(
            total=run.total,
            processed=run.processed,
            skipped=run.skipped,
            created=run.created,
            queued=total(Status.SCHEDULED, Status.QUEUED, Status.SENDING),
            sent=total(Status.SENT),
            delivered=total(Status.DELIVERED),
            failed=total(Status.FAILED, Status.EXPIRED),
            suppressed=total(Status.SUPPRESSED),
            cancelled=total(Status.CANCELLED),
            by_status=counts,
        ),
    )


def campaign_out(session: Session, campaign: Campaign, with_runs: bool = True) -> CampaignOut:
    audience = session.get(Audience, campaign.audience_id)
    schedule = None
    if campaign.cron or campaign.send_at:
        schedule = ScheduleIn(at=campaign.send_at, cron=campaign.cron, timezone=campaign.timezone)
    run_rows = (
        list(
            session.scalars(
                select(CampaignRun)
                .where(CampaignRun.campaign_id == campaign.id)
                .order_by(CampaignRun.run_at.desc())
                .limit(20)
            )
        )
        if with_runs
        else []
    )
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        template=campaign.template_name,
        template_version=campaign.template_version,
        audience=audience.name if audience else "",
        lane=campaign.lane,
        status=campaign.status,
        test=campaign.test,
        schedule=schedule,
        throttle_per_minute=campaign.throttle_per_minute,
        quiet_hours=QuietHoursIn(
            enabled=campaign.quiet_hours,
            start=campaign.quiet_start,
            end=campaign.quiet_end,
            timezone=campaign.quiet_timezone,
        ),
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
        archived_at=campaign.archived_at,
        runs=[run_out(session, r) for r in run_rows],
    )


def list_campaigns(session: Session, scope: str | None = ALL_SERVICES) -> list[Campaign]:
    stmt = select(Campaign).where(*owned(Campaign.service_id, scope))
    return list(session.scalars(stmt.order_by(Campaign.created_at.desc()).limit(500)))


def count_runs(session: Session, campaign_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(CampaignRun)
            .where(CampaignRun.campaign_id == campaign_id)
        )
        or 0
    )
