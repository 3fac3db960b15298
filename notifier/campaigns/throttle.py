"""Keeping a throttled run's pace across a pause.

A throttled run gives every sendable message a slot, ``started_at + slot * interval``, when it
fans out. A pause holds them all; if a resume simply released them, every slot that fell due
during the pause would go out at once, a burst the throttle exists to prevent. So a resume moves
the held messages' send times (and their expiry) by the length of the pause, and moves the run's
slot counter by as many slots as the pause lasted, so that messages fanned out after the resume
queue behind them. Messages a pause held that had no send time yet (queued, not sent) go out at
once on resume, as they would have without the pause.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from notifier.campaigns.models import HELD, CampaignRun
from notifier.notifications import queries, repository


def shift(
    session: Session, run_id: str, paused_at: datetime | None, now: datetime, per_minute: int
) -> int:
    """Move the run's held send times by the pause; returns how many messages moved."""
    if paused_at is None or now <= paused_at:
        return 0
    delta = now - paused_at
    moved = repository.postpone(session, [*queries.of_runs([run_id]), queries.held(HELD)], delta)
    interval = 60.0 / per_minute
    session.execute(
        update(CampaignRun)
        .where(CampaignRun.id == run_id)
        .values(slots=CampaignRun.slots + math.ceil(delta.total_seconds() / interval)),
        execution_options={"synchronize_session": False},
    )
    return moved
