"""End to end: notifications posted through the API (batch endpoint) until every one is final,
with a provider that takes --provider-latency-ms per call; beside the no-op Celery ceiling on the
same broker with the same number of worker processes.

    python -m bench.e2e [--n 20000] [--provider-latency-ms 50] [--broker redis|rabbitmq]
                        [--worker-processes 2] [--concurrency 64]
                        [--database-url ...] [--broker-url ...] [--redis-url ...]

Prints: notifications, e2e_per_s, ceiling_per_s, ratio, p50_ms/p99_ms (accept -> sent, from the
database), not_final (rows not final at the end, from the database), and, counted where the
recipient would see them, at the provider's output (the outbox's files, one per send: see
``providers/outbox.py``) against the ids the API returned: lost (accepted, never arrived) and
duplicates (arrived more than once; ``extra_sends`` the copies beyond the first), and what
each part cost in CPU (``cpu_ms_by_process``, ``cpu_ms_per_notification``, see ``bench/cpu.py``:
the local PostgreSQL, broker and Redis also serve whatever else runs on the machine).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine, func, select, text

from bench.common import (
    BIN,
    add_service_options,
    api_command,
    create_key,
    emit,
    environment,
    free_port,
    fresh_database,
    own_broker,
    process,
)
from bench.cpu import CpuMeter, groups, per_notification, shared_labels
from notifier.db.models import Notification

FINAL_OR_SENT = ("sent", "delivered", "failed", "expired", "suppressed", "cancelled")


def providers_file(directory: Path, latency_ms: float) -> Path:
    path = directory / "providers.toml"
    path.write_text(
        f'[providers.fake]\ntype = "outbox"\npath = "{directory / "outbox"}"\n'
        f"latency_ms = {latency_ms}\n"
        '[lanes]\n"email.transactional" = ["fake"]\n'
    )
    return path


def outbox_arrivals(outbox: Path) -> Counter[str]:
    """Notification id -> how many sends the outbox wrote (``<id>.json``, ``<id>.<mid>.json``)."""
    return Counter(path.name.split(".", 1)[0] for path in outbox.glob("*/*.json") if path.is_file())


def noop_ceiling(broker: str, redis_url: str, n: int, processes: int, concurrency: int) -> float:
    os.environ["BENCH_BROKER_URL"] = broker
    os.environ["BENCH_COUNTER_URL"] = redis_url
    from bench.noop_app import app, noop

    key = f"noop-{uuid.uuid4().hex}"
    counter = redis.Redis.from_url(redis_url)
    app.conf.broker_url = broker
    env = {**os.environ, "BENCH_BROKER_URL": broker, "BENCH_COUNTER_URL": redis_url}
    with app.connection_for_write() as connection, app.producer_or_acquire(None) as producer:
        for _ in range(n):
            noop.apply_async(
                args=[key], queue="bench.noop", producer=producer, connection=connection
            )
    started = time.perf_counter()
    with ExitStack() as stack:
        for i in range(processes):
            stack.enter_context(
                process(
                    [
                        str(BIN / "celery"),
                        "-A",
                        "bench.noop_app",
                        "worker",
                        "-Q",
                        "bench.noop",
                        "-P",
                        "threads",
                        "-c",
                        str(concurrency),
                        "-n",
                        f"noop{i}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "-l",
                        "warning",
                    ],
                    env,
                )
            )
        while int(counter.get(key) or 0) < n:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    counter.delete(key)
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--provider-latency-ms", type=float, default=50)
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument("--api-workers", type=int, default=2, help="API processes (production: 2)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="per worker process: the worker's own default, as the README's command runs it",
    )
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=600)
    add_service_options(parser)
    args = parser.parse_args()
    with own_broker(args.broker, args.broker_url) as broker:
        ceiling = noop_ceiling(
            broker, args.redis_url, args.n, args.worker_processes, args.concurrency
        )
        result = measure(args, broker)
    emit(
        {
            **result,
            "ceiling_per_s": round(ceiling, 1),
            "ratio": round(result["e2e_per_s"] / ceiling, 3),
        }
    )


def measure(args: argparse.Namespace, broker: str) -> dict:
    with fresh_database(args.database_url) as database_url, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        env = environment(
            database_url,
            broker,
            directory,
            args.redis_url,
            NOTIFIER_PROVIDERS_FILE=str(providers_file(directory, args.provider_latency_ms)),
            NOTIFIER_LOG_LEVEL="INFO",  # production's level: log_bytes_per_notification is real
        )
        key = create_key(env)
        port = free_port()
        engine = create_engine(database_url)
        with ExitStack() as stack:
            api = stack.enter_context(
                process(
                    api_command(port, args.api_workers),
                    env,
                    ready_url=f"http://127.0.0.1:{port}/healthz",
                )
            )
            workers = [
                stack.enter_context(
                    process(
                        [
                            str(BIN / "notifier"),
                            "worker",
                            "--lanes",
                            "email.transactional",
                            "--concurrency",
                            str(args.concurrency),
                            "--pool",
                            args.pool,
                        ],
                        env,
                    )
                )
                for _ in range(args.worker_processes)
            ]
            time.sleep(3)  # workers connected
            logs = [Path(p.log_path) for p in (api, *workers)]  # type: ignore[attr-defined]  # set by common.process
            logged_before = sum(f.stat().st_size for f in logs)
            meter = CpuMeter(
                shared_labels(
                    args.broker,
                    api=groups(lambda: api.pid),
                    worker=groups(*[lambda w=w: w.pid for w in workers]),
                )
            ).start()
            started = time.perf_counter()
            headers = {"Authorization": f"Bearer {key}"}
            accepted: list[str] = []
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60
            ) as client:
                for start in range(0, args.n, args.batch):
                    items = [
                        {
                            "channel": "email",
                            "to": f"user{i}@example.com",
                            "subject": "Receipt",
                            "body": "Thanks, {{ name }}",
                            "data": {"name": "Ada"},
                            "reference": f"r{i}",
                        }
                        for i in range(start, min(args.n, start + args.batch))
                    ]
                    response = client.post("/v1/notifications/batch", json={"notifications": items})
                    response.raise_for_status()
                    accepted += [r["id"] for r in response.json()["results"] if r.get("id")]
            posted = time.perf_counter() - started
            done = 0
            while time.perf_counter() - started < args.timeout:
                with engine.connect() as c:
                    done = c.execute(
                        select(func.count())
                        .select_from(Notification)
                        .where(Notification.status.in_(FINAL_OR_SENT))
                    ).scalar_one()
                if done >= args.n:
                    break
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
            cpu = meter.stop()
            logged = sum(f.stat().st_size for f in logs) - logged_before
        with engine.connect() as c:
            latencies = [
                r[0]
                for r in c.execute(
                    text(
                        "SELECT EXTRACT(EPOCH FROM (sent_at - created_at)) * 1000 "
                        "FROM notifications WHERE sent_at IS NOT NULL ORDER BY 1"
                    )
                )
            ]
            total = c.execute(select(func.count()).select_from(Notification)).scalar_one()
        engine.dispose()
        arrivals = outbox_arrivals(directory / "outbox")
        known = set(accepted)

    def pct(p: float) -> float:
        return (
            round(float(latencies[min(len(latencies) - 1, int(p * len(latencies)))]), 1)
            if latencies
            else -1
        )

    return {
        "benchmark": "e2e",
        "broker": args.broker if not args.broker_url else "given",
        "notifications": args.n,
        "stored": total,
        "provider_latency_ms": args.provider_latency_ms,
        "worker_processes": args.worker_processes,
        "concurrency": args.concurrency,
        "pool": args.pool,
        "post_seconds": round(posted, 2),
        "e2e_per_s": round(done / elapsed, 1),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "accepted": len(accepted),
        "not_final": args.n - done,
        "lost": sum(1 for i in accepted if arrivals[i] == 0),
        "duplicates": sum(1 for i in accepted if arrivals[i] > 1),
        "extra_sends": sum(max(0, arrivals[i] - 1) for i in accepted),
        "unknown_arrivals": sum(n for i, n in arrivals.items() if i not in known),
        "cpu_ms_by_process": cpu,
        "cpu_ms_per_notification": per_notification(cpu, done),
        "worker_cpu_ms_per_notification": round(cpu.get("worker", 0.0) / max(done, 1), 3),
        "log_bytes_per_notification": round(logged / max(done, 1), 1),
    }


if __name__ == "__main__":
    main()
