"""Worker liveness: each worker process says "still here" in ``worker_heartbeats``; readers ask
who is alive and whose heartbeat lapsed.

Why a table and not Celery's own heartbeats or ``inspect``: the sweeper and the health checks
already talk to the database, a broadcast ``inspect`` needs every worker to answer within a
timeout (a busy or reconnecting worker looks dead, a stalled consumer still answers), and Celery
events are off (``--without-gossip``). A row per process, upserted every
``NOTIFIER_WORKER_HEARTBEAT_SECONDS``, deleted on a clean stop, is the one record of which worker
processes exist, which queues they consume, and when each was last seen.

A worker is *live* while its ``seen_at`` is younger than ``NOTIFIER_WORKER_LAPSE_SECONDS``
(default 20 s, four heartbeats): one slow write or a database blip of a few seconds does not
make it lapse. Timestamps come from each worker's clock, so hosts must keep time (NTP); skew
well under the margin between the heartbeat and the lapse is harmless.

The writer runs on a daemon thread beside the worker's pool, so a worker whose delivery
threads are all busy (or blocked on a provider) still heartbeats: liveness says the process is
there, not that it is making progress. Progress is what ``notifier.delivery_health`` checks
(the age of the oldest due notification).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from notifier.db.models import WorkerHeartbeat, utcnow
from notifier.db.session import affected, transaction

log = logging.getLogger("notifier.liveness")

_identity: tuple[int, str] | None = None
_identity_lock = threading.Lock()


def worker_identity() -> str:
    """``<hostname>-<pid>-<random>``: unique per worker process, stable for its life.

    The random part tells apart two processes that reuse a pid (a container restarted with
    pid 1, a recycled pid on one host). Cached per pid, so a forked child (a prefork pool
    process) computes its own on first use instead of inheriting its parent's.
    """
    global _identity
    pid = os.getpid()
    with _identity_lock:
        if _identity is None or _identity[0] != pid:
            host = socket.gethostname()[:70]
            _identity = (pid, f"{host}-{pid}-{secrets.token_hex(4)}")
        return _identity[1]


def _forget_identity_in_child() -> None:
    global _identity, _identity_lock
    _identity = None
    _identity_lock = threading.Lock()  # a lock held by a parent thread at fork time stays held


os.register_at_fork(after_in_child=_forget_identity_in_child)


class HeartbeatWriter:
    """Upserts this worker's row every ``interval`` seconds on a daemon thread.

    A failed write (database away) is logged as a warning, at the first failure and then once
    a minute, and retried on the next beat: the worker keeps running and its row becomes fresh
    again as soon as the database answers. ``stop()`` deletes the row, so a worker shut down
    cleanly is gone at once rather than lapsing 20 s later.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        worker_id: str,
        queues: Iterable[str],
        interval: float,
    ) -> None:
        self.sessions = sessions
        self.worker_id = worker_id
        self.queues = sorted(set(queues))
        self.interval = interval
        self.hostname = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.started_at = utcnow()
        self._stopping = threading.Event()
        self._write_lock = threading.Lock()  # a beat never lands after stop() deleted the row
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._failures = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(self.interval + 10)
            self._thread = None
        with self._write_lock:
            self._stopped = True
            try:
                with transaction(self.sessions) as session:
                    session.execute(
                        delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == self.worker_id)
                    )
            except Exception:  # the row lapses on its own
                log.warning("worker.heartbeat.delete_failed", extra={"worker_id": self.worker_id})

    def beat(self) -> bool:
        """Write the row once; True when it was written. Never raises."""
        with self._write_lock:
            if self._stopped:
                return False
            try:
                self._upsert()
            except Exception as e:  # a database outage must not stop the worker
                self._failures += 1
                if self._failures == 1 or self._failures % max(1, int(60 / self.interval)) == 0:
                    log.warning(
                        "worker.heartbeat.failed",
                        extra={
                            "worker_id": self.worker_id,
                            "failures": self._failures,
                            "error_type": type(e).__name__,
                        },
                    )
                return False
        if self._failures:
            log.info(
                "worker.heartbeat.recovered",
                extra={"worker_id": self.worker_id, "failures": self._failures},
            )
            self._failures = 0
        return True

    def _upsert(self) -> None:
        now = utcnow()
        with transaction(self.sessions) as session:
            result = session.execute(
                update(WorkerHeartbeat)
                .where(WorkerHeartbeat.worker_id == self.worker_id)
                .values(seen_at=now, queues=self.queues)
            )
            if affected(result) == 0:  # first beat, or the row was removed while we were away
                session.add(
                    WorkerHeartbeat(
                        worker_id=self.worker_id,
                        hostname=self.hostname,
                        pid=self.pid,
                        queues=self.queues,
                        started_at=self.started_at,
                        seen_at=now,
                    )
                )

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.beat()
            self._stopping.wait(self.interval)


def live_workers(session: Session, now: datetime, lapse: float) -> list[WorkerHeartbeat]:
    """Workers seen within the last ``lapse`` seconds, oldest first."""
    cutoff = now - timedelta(seconds=lapse)
    return list(
        session.scalars(
            select(WorkerHeartbeat)
            .where(WorkerHeartbeat.seen_at >= cutoff)
            .order_by(WorkerHeartbeat.started_at, WorkerHeartbeat.worker_id)
        )
    )


def lapsed_worker_ids(session: Session, now: datetime, lapse: float) -> list[str]:
    """Workers whose last heartbeat is older than ``lapse`` seconds: dead, or cut off."""
    cutoff = now - timedelta(seconds=lapse)
    return list(
        session.scalars(
            select(WorkerHeartbeat.worker_id)
            .where(WorkerHeartbeat.seen_at < cutoff)
            .order_by(WorkerHeartbeat.worker_id)
        )
    )


def forget_workers(
    session: Session, worker_ids: list[str], seen_before: datetime | None = None
) -> int:
    """Delete the rows of workers known dead (their claims recovered), so the table holds only
    the living and the not-yet-handled; with ``seen_before``, a row refreshed since (a worker
    that was only cut off) is kept. Returns how many went."""
    if not worker_ids:
        return 0
    stmt = delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id.in_(worker_ids))
    if seen_before is not None:
        stmt = stmt.where(WorkerHeartbeat.seen_at < seen_before)
    return affected(session.execute(stmt))
