"""The one bounded retry policy for task-level failures, shared by every task.

A task fails as a task only when the database is briefly unreachable; provider failures are not
task failures (they are recorded and retried by the delivery flow). Tasks close over their app's
runtime, so they are registered with ``shared=False``: Celery's default (``shared=True``) would
hand every later app in the process the first app's callables.
"""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError

TASK_POLICY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}

TASK_OPTIONS = {"shared": False, **TASK_POLICY}
