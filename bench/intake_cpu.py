"""The API's own CPU per accepted notification, measured inside one process, without sockets.

``bench.intake`` measures the production configuration end to end, but on a shared machine its
throughput, and with it the size of each group commit and so the CPU per request, moves with
whatever else runs. This benchmark keeps only our part: the real application (``create_app``, the
same settings, PostgreSQL, the broker, Redis-backed rate limits) is called as an ASGI app by
``--concurrency`` tasks on a uvloop event loop, each posting the intake body as fast as it is
answered, and the process's CPU time (every thread: the event loop and the group-commit writer)
is divided by the notifications accepted. HTTP parsing and the socket writes (uvicorn's, the
same in every version of our code) are left out; so are PostgreSQL's, the broker's and Redis's
CPU, which ``bench.intake`` reports.

    python -m bench.intake_cpu [--n 20000] [--concurrency 64] [--batch 0]
                               [--services 100 --keys 1000] [--rounds 2]
                               [--database-url ...] [--broker-url ...] [--redis-url ...]

Prints one JSON line: ``api_cpu_ms_per_notification``, ``loop_thread_cpu_ms_per_notification``
(the event loop's thread alone), ``notifications``, ``seconds``, ``non_2xx``.

With ``--services N --keys M`` (``bench.intake.populate``: M keys over N services, a key picked
at random per request) the same application is measured in alternating rounds with the one key
and with the M keys, and the line gives both figures and their ``ratio`` (one key's CPU per
notification over the many keys': 1.0 is "no dearer", the issue allows 0.95).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from typing import Any

import uvloop

from bench.common import add_service_options, emit, keyed_stack
from bench.intake import BODY, batch_of, populate


async def _post(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def _headers(key: str, body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-length", str(len(body)).encode()),
    ]


async def _run(app: Any, path: str, body: bytes, keys: list[str], n: int, concurrency: int) -> dict:
    """``n`` requests by ``concurrency`` clients, each with a key picked at random: the process's
    CPU, the event loop thread's, the wall time, and the refusals."""
    headers = [_headers(key, body) for key in keys]
    statuses: list[int] = []
    remaining = n

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            statuses.append(await _post(app, path, body, random.choice(headers)))

    cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return {
        "cpu_s": time.process_time() - cpu,
        "loop_cpu_s": time.thread_time() - loop_cpu,
        "seconds": time.perf_counter() - wall,
        "non_2xx": sum(1 for s in statuses if not 200 <= s < 300),
    }


async def _drive(
    app: Any,
    path: str,
    body: bytes,
    runs: dict[str, list[str]],
    n: int,
    concurrency: int,
    rounds: int,
) -> dict[str, list[dict]]:
    """Each kind of run (its keys) measured ``rounds`` times, alternating, after a warm-up of
    each (pools, caches, compiled templates, leases, every key seen once)."""
    measured: dict[str, list[dict]] = {kind: [] for kind in runs}
    async with app.router.lifespan_context(app):
        for keys in runs.values():
            await _run(app, path, body, keys, max(min(2000, n), 2 * len(keys)), concurrency)
        for _ in range(rounds):
            for kind, keys in runs.items():
                measured[kind].append(await _run(app, path, body, keys, n, concurrency))
    return measured


def _figures(runs: list[dict], notifications: int) -> dict:
    cpu = sum(r["cpu_s"] for r in runs)
    loop_cpu = sum(r["loop_cpu_s"] for r in runs)
    total = notifications * len(runs)
    return {
        "seconds": round(sum(r["seconds"] for r in runs), 2),
        "notifications_per_cpu_s": round(total / cpu, 1),
        "api_cpu_ms_per_notification": round(cpu * 1000 / total, 4),
        "loop_thread_cpu_ms_per_notification": round(loop_cpu * 1000 / total, 4),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "rounds_cpu_ms": [round(r["cpu_s"] * 1000 / notifications, 4) for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000, help="requests measured (per round)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=0, help="notifications per batch request")
    parser.add_argument("--services", type=int, default=1, help="services the keys spread over")
    parser.add_argument("--keys", type=int, default=1, help="keys, picked at random per request")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of each kind")
    add_service_options(parser, broker_default="rabbitmq")
    args = parser.parse_args()
    many = args.keys > 1 or args.services > 1
    with keyed_stack(args) as (env, key):
        runs = {"one": [key]}
        if many:
            runs["many"] = populate(env, args.services, args.keys)
        os.environ.update(env)
        from notifier.api.app import create_served_app

        app = create_served_app()
        path, payload = "/v1/notifications", BODY
        if args.batch:
            path, payload = "/v1/notifications/batch", batch_of(args.batch)
        body = json.dumps(payload).encode()
        measured = uvloop.run(_drive(app, path, body, runs, args.n, args.concurrency, args.rounds))
        app.state.runtime.close()
    notifications = args.n * (args.batch or 1)
    result = {
        "benchmark": "intake_cpu_batch" if args.batch else "intake_cpu",
        "notifications": notifications,
        "concurrency": args.concurrency,
        **_figures(measured["one"], notifications),
    }
    if many:
        one, other = result, _figures(measured["many"], notifications)
        result = {
            **result,
            "benchmark": f"{result['benchmark']}_services",
            "services": args.services,
            "keys": args.keys,
            "many_keys": other,
            "ratio": round(
                one["api_cpu_ms_per_notification"] / other["api_cpu_ms_per_notification"], 3
            ),
        }
    emit(result)


if __name__ == "__main__":
    main()
