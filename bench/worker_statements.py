"""What the delivery task costs PostgreSQL, measured apart from everything else on the machine.

``bench.e2e``'s ``postgres`` figure is the whole local server's CPU (other databases included),
so on a shared machine it cannot tell one change of the worker's statements from another's load.
This runs the delivery task in-process (``workers.delivery.deliver_ids``, the outbox provider,
no latency) on a fresh partitioned database of its own, and reports the statements it sent per
notification (an engine listener: one per parameter set of an executemany) and the CPU the
server's backends serving this database used (``/proc/<pid>/stat`` of each of them: the server
must be local).

    python -m bench.worker_statements [--tasks 100] [--ids-per-task 50] [--database-url ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from bench.common import emit, fresh_database
from notifier.db import partitions
from notifier.db.migrate import upgrade
from notifier.db.models import utcnow
from notifier.publishing import MAX_IDS_PER_TASK
from tests.factories import insert_notifications, make_settings, notification_row
from tests.services import PG_URL
from workers.app import create_worker_app
from workers.delivery import deliver_ids

TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu_ms(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total * 1000 / TICKS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--ids-per-task", type=int, default=MAX_IDS_PER_TASK)
    parser.add_argument("--database-url", default=PG_URL)
    args = parser.parse_args()
    with fresh_database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url, layout=partitions.Layout(days=1, ahead_days=29))
        app = create_worker_app(make_settings(Path(tmp), database_url=url), pool_size=2)
        runtime = app.runtime
        now = utcnow() - timedelta(seconds=5)
        groups = []
        for t in range(args.tasks):
            rows = [
                notification_row(recipient=f"u{t}-{i}@example.com", now=now)
                for i in range(args.ids_per_task)
            ]
            insert_notifications(runtime, rows)
            groups.append(([r["id"] for r in rows], [r["created_at"] for r in rows]))
        deliver_ids(app.delivery, *groups.pop())  # warm: pool connections, caches
        kinds: Counter[str] = Counter()

        def count(*a: Any) -> None:
            parameters, many = a[3], a[5]
            kinds[a[2].split()[0]] += len(parameters) if many else 1

        name = url.rsplit("/", 1)[1]
        with runtime.engine.connect() as c:
            pids = list(
                c.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": name}
                ).scalars()
            )
        event.listen(runtime.engine, "before_cursor_execute", count)
        cpu_before, started = backend_cpu_ms(pids), time.perf_counter()
        for ids, created in groups:
            deliver_ids(app.delivery, ids, created)
        elapsed = time.perf_counter() - started
        cpu = backend_cpu_ms(pids) - cpu_before
        event.remove(runtime.engine, "before_cursor_execute", count)
        n = len(groups) * args.ids_per_task
        app.delivery.close()
        runtime.close()
    emit(
        {
            "benchmark": "worker_statements",
            "notifications": n,
            "ids_per_task": args.ids_per_task,
            "backends": len(pids),
            "statements_per_notification": round(sum(kinds.values()) / n, 3),
            "statements_by_kind": dict(kinds),
            "postgres_cpu_ms_per_notification": round(cpu / n, 3),
            "seconds": round(elapsed, 2),
        }
    )


if __name__ == "__main__":
    main()
