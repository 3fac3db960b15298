"""Campaign run tasks on the ``campaigns`` queue.

* ``notifier.campaigns.fire`` (from beat's database schedule): start the due run, once;
* ``notifier.campaigns.run``: release what a resume un-held, then fan out the run in chunks;
* ``notifier.campaigns.resume_stalled`` (on beat): re-enqueue runs whose worker died;
* ``notifier.campaigns.settle`` (on beat): complete the fanned-out runs with nothing held back
  any more (a throttled run completes when its last message is released, not when it fanned out).

Tasks take ids and reload everything; a repeated or concurrent task is harmless (the run row is
unique per occurrence, the fan-out cursor moves with a compare-and-set).
"""

from __future__ import annotations

from celery import Celery

from notifier import tasks
from notifier.campaigns import completion, runs
from notifier.runtime import Runtime
from workers.task_policy import TASK_OPTIONS


def register(app: Celery) -> None:
    """Register the campaign tasks on ``app``."""
    runtime: Runtime = app.runtime

    @app.task(name=tasks.CAMPAIGNS_FIRE, **TASK_OPTIONS)
    def fire(campaign_id: str) -> str | None:
        return runs.fire(runtime, campaign_id)

    @app.task(name=tasks.CAMPAIGNS_RUN, **TASK_OPTIONS)
    def run(run_id: str) -> dict[str, object]:
        return runs.run(runtime, run_id).__dict__

    @app.task(name=tasks.CAMPAIGNS_RESUME_STALLED, **TASK_OPTIONS)
    def resume_stalled() -> list[str]:
        return runs.resume_stalled(runtime)

    @app.task(name=tasks.CAMPAIGNS_SETTLE, **TASK_OPTIONS)
    def settle() -> list[str]:
        return completion.settle(runtime)
