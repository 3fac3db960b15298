"""Structured logs: one JSON object per line with a stable dotted event name and ids.

Code logs ``log.info("delivery.attempt.failed", extra={"notification_id": ...})``; the message is
the event name, never interpolated prose. Values of keys that name secrets are masked here as a
last line of defence (the code never passes them in the first place).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from notifier.logcontext import current

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# Field names that hold secrets, matched as whole words of the field name: "code" masks "code" and
# "otp_code" but not "response_code"; "key" is not listed (it would mask "api_key_id").
_SECRET_WORDS = frozenset({"password", "secret", "token", "authorization", "otp", "pin", "credential"})
_SECRET_NAMES = frozenset({"code", "api_key", "auth_token", "otp_code", "one_time_code"})


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(word in _SECRET_WORDS for word in lowered.split("_"))


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
                entry[key] = "[masked]" if _is_secret(key) else value
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(entry, default=str)


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
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel("WARNING")
