"""Intake throughput: single POSTs (or --batch N) at 64 connections against PostgreSQL and a broker.

Prints one JSON line: rps, p50/p99, and the ceiling — a bare FastAPI endpoint validating the same
body, served with the same uvicorn settings — measured in the same run.

    python -m bench.intake [--broker redis|rabbitmq] [--seconds 10] [--connections 64] [--batch 1000]
                           [--database-url ...] [--broker-url ...] [--redis-url ...]

Also prints the CPU each part used during the measured run (``cpu_ms_by_process``,
``cpu_ms_per_notification``: ``bench/cpu.py``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.common import (
    BIN,
    add_service_options,
    create_key,
    emit,
    environment,
    free_port,
    fresh_database,
    own_broker,
    process,
    wrk,
)
from bench.cpu import CpuMeter, groups, per_notification, shared_labels

BODY = {"channel": "email", "category": "transactional", "to": "ada@example.com", "subject": "Your receipt",
        "body": "Thanks, {{ name }}", "data": {"name": "Ada"}, "reference": "order-42"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=0, help="notifications per batch request (0: single)")
    add_service_options(parser)
    args = parser.parse_args()

    with own_broker(args.broker, args.broker_url) as broker, fresh_database(args.database_url) as database_url, \
            tempfile.TemporaryDirectory() as tmp:
        env = environment(database_url, broker, Path(tmp), args.redis_url)
        key = create_key(env)
        uvicorn_args = ["--workers", str(args.api_workers), "--loop", "uvloop", "--http", "httptools",
                        "--no-access-log", "--log-level", "warning"]
        single = json.dumps(BODY)
        path = "/v1/notifications"
        body = single
        if args.batch:
            path = "/v1/notifications/batch"
            body = json.dumps({"notifications": [{**BODY, "to": f"user{i}@example.com"} for i in range(args.batch)]})

        port = free_port()
        with process([str(BIN / "uvicorn"), "bench.bare_app:app", "--port", str(port), *uvicorn_args], env,
                     ready_url=f"http://127.0.0.1:{port}/docs"):
            ceiling = wrk(f"http://127.0.0.1:{port}/v1/notifications", single, {}, args.seconds, args.connections)

        port = free_port()
        api = [str(BIN / "notifier"), "api", "--port", str(port), "--workers", str(args.api_workers)]
        with process(api, env, ready_url=f"http://127.0.0.1:{port}/healthz") as api_process:
            connections = min(args.connections, args.api_workers * 2) if args.batch else args.connections
            meter = CpuMeter(shared_labels(args.broker, api=groups(lambda: api_process.pid))).start()
            measured = wrk(f"http://127.0.0.1:{port}{path}", body, {"Authorization": f"Bearer {key}"},
                           args.seconds, connections)
            cpu = meter.stop()

    result = {
        "benchmark": "intake_batch" if args.batch else "intake",
        "broker": args.broker if not args.broker_url else "given",
        "connections": min(args.connections, args.api_workers * 2) if args.batch else args.connections,
        "seconds": args.seconds,
        "api_workers": args.api_workers,
        "rps": measured["rps"],
        "p50_ms": measured["p50_ms"],
        "p99_ms": measured["p99_ms"],
        "non_2xx": measured["non_2xx"],
        "ceiling_rps": ceiling["rps"],
        "ratio": round(measured["rps"] / ceiling["rps"], 3),
    }
    if args.batch:
        result["batch"] = args.batch
        result["notifications_per_s"] = round(measured["rps"] * args.batch, 1)
    result["cpu_ms_by_process"] = cpu
    result["cpu_ms_per_notification"] = per_notification(cpu, measured["requests"] * (args.batch or 1))
    emit(result)


if __name__ == "__main__":
    main()
