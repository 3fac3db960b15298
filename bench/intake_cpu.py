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
                               [--database-url ...] [--broker-url ...] [--redis-url ...]

Prints one JSON line: ``api_cpu_ms_per_notification``, ``loop_thread_cpu_ms_per_notification``
(the event loop's thread alone), ``notifications``, ``seconds``, ``non_2xx``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import uvloop

from bench.common import add_service_options, emit, keyed_stack
from bench.intake import BODY, batch_of


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


async def _drive(app: Any, path: str, body: bytes, key: str, n: int, concurrency: int) -> dict:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    statuses: list[int] = []
    remaining = n

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            statuses.append(await _post(app, path, body, headers))

    async with app.router.lifespan_context(app):
        remaining = min(2000, n)  # warm-up: pools, caches, compiled templates, leases
        await asyncio.gather(*(client() for _ in range(concurrency)))
        statuses.clear()
        remaining = n
        cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
        wall = time.perf_counter() - wall
    return {
        "cpu_s": cpu,
        "loop_cpu_s": loop_cpu,
        "seconds": wall,
        "non_2xx": sum(1 for s in statuses if not 200 <= s < 300),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000, help="requests measured")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=0, help="notifications per batch request")
    add_service_options(parser, broker_default="rabbitmq")
    args = parser.parse_args()
    with keyed_stack(args) as (env, key):
        os.environ.update(env)
        from notifier.api.app import create_served_app

        app = create_served_app()
        path, payload = "/v1/notifications", BODY
        if args.batch:
            path, payload = "/v1/notifications/batch", batch_of(args.batch)
        body = json.dumps(payload).encode()
        measured = uvloop.run(_drive(app, path, body, key, args.n, args.concurrency))
        app.state.runtime.close()
    notifications = args.n * (args.batch or 1)
    emit(
        {
            "benchmark": "intake_cpu_batch" if args.batch else "intake_cpu",
            "notifications": notifications,
            "concurrency": args.concurrency,
            "seconds": round(measured["seconds"], 2),
            "notifications_per_cpu_s": round(notifications / measured["cpu_s"], 1),
            "api_cpu_ms_per_notification": round(measured["cpu_s"] * 1000 / notifications, 4),
            "loop_thread_cpu_ms_per_notification": round(
                measured["loop_cpu_s"] * 1000 / notifications, 4
            ),
            "non_2xx": measured["non_2xx"],
        }
    )


if __name__ == "__main__":
    main()
