"""Structured logs: one JSON object per line with a stable dotted event name and ids.

Code logs ``log.info("delivery.attempt.failed", extra={"notification_id": ...})``; the message is
the event name, never interpolated prose. Values of keys that name secrets are replaced by
``[redacted]`` here as a last line of defence (the code never passes them in the first place).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from notifier.logcontext import current
from notifier.redaction import REDACTED, is_secret

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # several API or pool processes log to one stream
            "event": record.getMessage(),
            **current(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = REDACTED if is_secret(key) else value
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(entry, default=str)


# Loggers that speak per request, per task or per beat tick at INFO: at 50 million notifications
# a day that is tens of gigabytes of lines nobody reads. Our own events say what matters, once
# per lifecycle step (``delivery.attempt``, ``sweeper.swept``, ...); these speak from WARNING.
NOISY_LOGGERS = (
    "uvicorn.access",
    "celery.app.trace",  # "Task ... succeeded in ..." per task
    "celery.worker.strategy",  # "Task ... received" per task
    "sqlalchemy_celery_beat.schedulers",  # "DatabaseScheduler: Schedule changed." etc.
)


class QuietTicks(logging.Filter):
    """Drops beat's "Sending due task <entry>" for the periodic safety nets (every few seconds,
    forever) and keeps it for everything else (a campaign firing is worth a line)."""

    def __init__(self, entries: Iterable[str]) -> None:
        super().__init__()
        self.entries = frozenset(entries)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (args and "Sending due task" in str(record.msg) and args[0] in self.entries)


def quiet_beat_ticks(entries: Iterable[str]) -> None:
    logging.getLogger("celery.beat").addFilter(QuietTicks(entries))


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
