"""When a campaign run is complete.

The fan-out of a run takes seconds, but a throttled run (or one deferred by quiet hours) holds
most of its messages as ``scheduled`` until their turn comes, for minutes or hours. Reporting it
``completed`` when the fan-out ended was wrong twice over: operators read "done" while thousands
of messages still waited, and a completed campaign can no longer be paused. So a run is complete
only when its fan-out has reached the end of the audience (``fanned_out_at``) *and* nothing of it
is held back; until then it stays ``running``. :func:`settle` runs on beat and completes the runs
whose last held-back message was released.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.campaigns.models import Campaign, CampaignRun, CampaignStatus, RunStatus
from notifier.db.models import utcnow
from notifier.db.session import affected, transaction
from notifier.notifications import listing
from notifier.runtime import Runtime
from notifier.statuses import Status

log = logging.getLogger("notifier.campaigns")


def held_back(session: Session, run_id: str) -> int:
    """Notifications of the run still waiting for their time (throttle, quiet hours, a pause)."""
    return listing.count(session, listing.Filters(reference=run_id, status=Status.SCHEDULED.value))


def complete_if_settled(session: Session, run_id: str, now: datetime) -> bool:
    """Complete a fanned-out, running run once every recipient has been queued (or settled) and
    nothing is held back; its campaign goes back to ``scheduled`` (cron) or ``completed``."""
    if held_back(session, run_id):
        return False
    run_row = session.get(CampaignRun, run_id)
    if run_row is None:
        return False
    moved = affected(
        session.execute(
            update(CampaignRun)
            .where(
                CampaignRun.id == run_id,
                CampaignRun.status == RunStatus.RUNNING.value,
                CampaignRun.fanned_out_at.is_not(None),
            )
            .values(status=RunStatus.COMPLETED.value, finished_at=now, heartbeat_at=now),
            execution_options={"synchronize_session": False},
        )
    )
    if moved != 1:
        return False
    campaign = session.get(Campaign, run_row.campaign_id)
    others = session.scalar(
        select(func.count())
        .select_from(CampaignRun)
        .where(
            CampaignRun.campaign_id == run_row.campaign_id,
            CampaignRun.id != run_id,
            CampaignRun.status == RunStatus.RUNNING.value,
        )
    )
    if campaign is not None and not others:
        after = CampaignStatus.SCHEDULED if campaign.cron else CampaignStatus.COMPLETED
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.RUNNING.value)
            .values(status=after.value, updated_at=now),
            execution_options={"synchronize_session": False},
        )
    log.info("campaign.run.completed", extra={"run_id": run_id})
    return True


def running_runs(session: Session, *where: ColumnElement[bool]) -> list[str]:
    """The ids of the ``running`` runs that also match ``where``."""
    stmt = select(CampaignRun.id).where(CampaignRun.status == RunStatus.RUNNING.value, *where)
    return list(session.scalars(stmt))


def settle(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """On beat: complete the fanned-out runs whose last held-back message has been released."""
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        waiting = running_runs(session, CampaignRun.fanned_out_at.is_not(None))
    completed = []
    for run_id in waiting:
        with transaction(runtime.sessions) as session:
            if complete_if_settled(session, run_id, now):
                completed.append(run_id)
    return completed
