"""What the benchmarks share: a fresh PostgreSQL database, processes of ours, wrk, JSON output."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BROKERS = {"redis": "redis://127.0.0.1:6379/12", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//"}


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def fresh_database() -> Iterator[str]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"notifier_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def environment(database_url: str, broker_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "NOTIFIER_ENV": "production",
        "NOTIFIER_SECRET_KEY": secrets.token_urlsafe(32),
        "NOTIFIER_DATABASE_URL": database_url,
        "NOTIFIER_BROKER_URL": broker_url,
        "NOTIFIER_DATA_DIR": str(data_dir),
        "NOTIFIER_API_RATE_LIMIT": "100000000/minute",
        "NOTIFIER_SMS_RECIPIENT_RATE_LIMIT": "100000000/minute",
        "NOTIFIER_LOG_LEVEL": "WARNING",
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
    }
    env.update(extra)
    return env


def notifier(env: dict[str, str], *args: str) -> str:
    return subprocess.run([str(BIN / "notifier"), *args], env=env, capture_output=True, text=True,
                          check=True).stdout


def create_key(env: dict[str, str]) -> str:
    notifier(env, "db", "upgrade")
    return notifier(env, "keys", "create", "--name", "bench").strip().splitlines()[-1]


@contextmanager
def process(args: list[str], env: dict[str, str], ready_url: str | None = None,
            timeout: float = 60) -> Iterator[subprocess.Popen]:
    log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False)
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=ROOT)
    try:
        if ready_url:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(ready_url, timeout=1).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not start; see {log.name}")
                time.sleep(0.2)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wrk(url: str, body: str, headers: dict[str, str], seconds: int, connections: int, threads: int = 2,
        timeout: int = 30) -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}",
             'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write("\n".join(lines) + "\n")
    script.close()
    threads = min(threads, connections)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
                          "--timeout", f"{timeout}s",
                          "-s", script.name, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)", out, flags=re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": round(ms(percentiles["50"]), 2),
        "p99_ms": round(ms(percentiles["99"]), 2),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


def purge_queues(broker_url: str) -> None:
    from kombu import Connection

    from workers.queues import ALL_QUEUES

    with Connection(broker_url) as connection:
        channel = connection.default_channel
        for queue in ALL_QUEUES:
            try:
                channel.queue_purge(queue)
            except Exception:  # noqa: BLE001 - a queue not declared yet
                channel = connection.channel()
