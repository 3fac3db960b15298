"""``notifier dev``: the embedded default, everything in one process.

SQLite under ``./.notifier/``, an in-process broker, a thread-pool worker on every queue, beat,
and the outbox provider. Killing it loses nothing: at start-up the sweeper re-publishes whatever
was queued and recovers whatever was being sent when the last process died.
"""

from __future__ import annotations

import logging

import uvicorn
from rich.console import Console
from sqlalchemy import make_url

from notifier import logs
from notifier.api.app import create_app
from notifier.config import Settings
from notifier.db.migrate import upgrade


def run_dev(settings: Settings) -> None:
    from notifier.tasks import ALL_QUEUES
    from workers import sweeper
    from workers.app import create_worker_app
    from workers.embedded import embedded_worker

    logs.configure(
        settings.log_level, settings.log_format if settings.log_format != "json" else "console"
    )
    for chatty in ("celery.worker.strategy", "celery.app.trace", "celery.beat"):
        logging.getLogger(chatty).setLevel(
            "WARNING"
        )  # one line per task every 2 s drowns the console
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, pooler=settings.database_pooler)
    celery = create_worker_app(settings, pool_size=5)
    console = Console(stderr=True)
    with embedded_worker(
        celery, ALL_QUEUES, concurrency=16, beat_schedule_file=settings.data_dir / "beat-schedule"
    ):
        report = sweeper.sweep(celery.runtime, queued_stale=0, sending_timeout=0)
        if report.republished or report.recovered:
            console.print(
                f"recovered after restart: {report.republished} queued, "
                f"{report.recovered} in flight"
            )
        console.print(
            f"notifier dev: API on http://{settings.host}:{settings.port} (docs at /docs), "
            f"database {make_url(settings.database_url).render_as_string(hide_password=True)}, "
            f"outbox {settings.outbox_dir}/"
        )
        app = create_app(runtime=celery.runtime)
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
