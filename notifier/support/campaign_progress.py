"""Campaign progress for the console: each campaign's latest run, counted by status, of the
campaigns the staff member's scope sees (:mod:`notifier.ownership`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.campaigns.models import Campaign, CampaignRun
from notifier.campaigns.runs import progress
from notifier.ownership import ALL_SERVICES, owned
from notifier.statuses import FINAL_STATUSES, Status


@dataclass(frozen=True)
class RunProgress:
    campaign: Campaign
    run: CampaignRun | None
    counts: dict[str, int]

    def count(self, *statuses: Status) -> int:
        return sum(self.counts.get(s.value, 0) for s in statuses)

    @property
    def done(self) -> int:
        """Notifications that reached the provider or a final status."""
        return self.count(Status.SENT, *FINAL_STATUSES)

    @property
    def total(self) -> int:
        return self.run.total if self.run is not None else 0


def latest(
    session: Session, scope: str | None = ALL_SERVICES, limit: int = 50
) -> list[RunProgress]:
    campaigns = session.scalars(
        select(Campaign)
        .where(*owned(Campaign.service_id, scope))
        .order_by(Campaign.created_at.desc())
        .limit(limit)
    ).all()
    result = []
    for campaign in campaigns:
        run = session.scalars(
            select(CampaignRun)
            .where(CampaignRun.campaign_id == campaign.id)
            .order_by(CampaignRun.run_at.desc())
        ).first()
        result.append(
            RunProgress(campaign, run, progress(session, run.id) if run is not None else {})
        )
    return result
