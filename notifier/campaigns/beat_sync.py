"""Keeping celery-beat's database schedule (sqlalchemy-celery-beat) in step with campaigns.

Each scheduled campaign has one ``PeriodicTask`` named ``campaign:<id>`` that calls
``notifier.campaigns.fire`` on the ``campaigns`` queue: a crontab entry in the campaign's
timezone, or a one-off clocked entry. Writing the row bumps the library's change marker, so a
running beat (``notifier beat`` uses its ``DatabaseScheduler``) picks it up within its loop
interval, without a restart. Pausing disables the entry; completing or cancelling removes it.

The library's tables (``celery_periodictask``, ``celery_crontabschedule``, ...) are created by the
library itself (``create_all``, idempotent), when beat starts and here before the first write:
they belong to the library's version, not to our migrations.
"""

from __future__ import annotations

import json
import threading

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask
from sqlalchemy_celery_beat.session import ModelBase

from notifier.campaigns.models import Campaign, CampaignStatus
from notifier.tasks import CAMPAIGNS_FIRE

QUEUE = "campaigns"
FIRE_EXPIRES_SECONDS = 3600  # a fire message older than this is dropped, not run late
_TRANSLATE = {"schema_translate_map": {"celery_schema": None}}
_prepared: set[str] = set()
_lock = threading.Lock()


def entry_name(campaign_id: str) -> str:
    return f"campaign:{campaign_id}"


def beat_engine(engine: Engine) -> Engine:
    return engine.execution_options(**_TRANSLATE)


def ensure_tables(engine: Engine) -> None:
    key = str(engine.url)
    with _lock:
        if key not in _prepared:
            ModelBase.metadata.create_all(beat_engine(engine))
            _prepared.add(key)


def cron_fields(expression: str) -> dict[str, str]:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def sync(engine: Engine, campaign: Campaign) -> None:
    """Make the campaign's beat entry match its schedule and status."""
    ensure_tables(engine)
    wanted = campaign.status in (
        CampaignStatus.SCHEDULED.value,
        CampaignStatus.RUNNING.value,
        CampaignStatus.PAUSED.value,
    ) and bool(campaign.cron or campaign.send_at)
    sessions = sessionmaker(beat_engine(engine), expire_on_commit=False)
    with sessions() as session:
        task = session.scalars(
            select(PeriodicTask).where(PeriodicTask.name == entry_name(campaign.id))
        ).first()
        if not wanted:
            if task is not None:
                session.delete(task)
                session.commit()
            return
        schedule = _schedule(session, campaign)
        if task is None:
            task = PeriodicTask(name=entry_name(campaign.id), task=CAMPAIGNS_FIRE)
            session.add(task)
        task.schedule_model = schedule
        task.args = json.dumps([campaign.id])
        task.kwargs = "{}"
        task.queue = QUEUE
        task.routing_key = QUEUE
        task.expire_seconds = FIRE_EXPIRES_SECONDS
        task.one_off = isinstance(schedule, ClockedSchedule)
        task.enabled = campaign.status != CampaignStatus.PAUSED.value
        task.description = f"campaign {campaign.name}"
        session.commit()


def _schedule(session: Session, campaign: Campaign) -> CrontabSchedule | ClockedSchedule:
    if campaign.cron:
        spec = {**cron_fields(campaign.cron), "timezone": campaign.timezone or "UTC"}
        model = session.scalars(select(CrontabSchedule).filter_by(**spec)).first()
        if model is None:
            model = CrontabSchedule(**spec)
            session.add(model)
            session.flush()
        return model
    model = session.scalars(
        select(ClockedSchedule).filter_by(clocked_time=campaign.send_at)
    ).first()
    if model is None:
        model = ClockedSchedule(clocked_time=campaign.send_at)
        session.add(model)
        session.flush()
    return model


def entry(engine: Engine, campaign_id: str) -> PeriodicTask | None:
    """The campaign's beat entry (for tests and the API's view)."""
    ensure_tables(engine)
    sessions = sessionmaker(beat_engine(engine), expire_on_commit=False)
    with sessions() as session:
        return session.scalars(
            select(PeriodicTask).where(PeriodicTask.name == entry_name(campaign_id))
        ).first()
