"""What the benchmarks share: the services they run on, processes of ours, wrk, JSON output.

Every benchmark takes ``--database-url``, ``--broker-url`` and ``--redis-url``
(:func:`add_service_options`). By default they are the local services, and a benchmark only ever
removes what it created itself: a database of its own in the PostgreSQL server (dropped at the
end), a RabbitMQ vhost of its own (created with ``rabbitmqctl``, deleted at the end) or the
benchmarks' Redis DB 12, which must be empty when the run starts (flushed at the end). A broker URL
given on the command line is used as it is and never purged: give one the benchmark may fill.
``--redis-url`` is what notifier's rate limits use (``NOTIFIER_REDIS_URL``, as in production) and
where the no-op ceiling counts; only keys of the run's own are written there.
"""

from __future__ import annotations

import argparse
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
PG_ADMIN_URL = os.environ.get(
    "BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = "redis://127.0.0.1:6379/11"
BROKERS = {"redis": "redis://127.0.0.1:6379/12", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/"}


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_service_options(parser: argparse.ArgumentParser, broker_default: str = "redis") -> None:
    parser.add_argument(
        "--broker",
        choices=sorted(BROKERS),
        default=broker_default,
        help="kind of the default broker when --broker-url is not given",
    )
    parser.add_argument(
        "--database-url",
        default=PG_ADMIN_URL,
        help="a PostgreSQL server: a database of the benchmark's own is created there and dropped",
    )
    parser.add_argument(
        "--broker-url",
        default=None,
        help="used as is, never purged (default: a vhost of its own on the local RabbitMQ, "
        "or the local Redis DB 12, which must be empty)",
    )
    parser.add_argument(
        "--redis-url",
        default=REDIS_URL,
        help="rate limits (NOTIFIER_REDIS_URL) and counters; only keys of the run's own",
    )


@contextmanager
def own_broker(kind: str, url: str | None = None) -> Iterator[str]:
    """The broker URL to use; see the module docstring for what is created and removed."""
    if url:
        yield url
        return
    if kind == "rabbitmq":
        vhost = f"bench_{uuid.uuid4().hex[:8]}"
        _rabbitmqctl("add_vhost", vhost)
        try:
            _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            yield BROKERS["rabbitmq"] + vhost
        finally:
            _rabbitmqctl("delete_vhost", vhost)
        return
    import redis

    client = redis.Redis.from_url(BROKERS["redis"])
    if client.dbsize():
        raise SystemExit(
            f"{BROKERS['redis']} is not empty (another run, or one that was killed): pass "
            "--broker-url with an empty Redis DB of yours"
        )
    try:
        yield BROKERS["redis"]
    finally:
        client.flushdb()
        client.close()


def _rabbitmqctl(*args: str) -> None:
    if shutil.which("rabbitmqctl") is None:
        raise SystemExit(
            "rabbitmqctl is needed to create the benchmark's vhost; or pass --broker-url"
        )
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise SystemExit(
            f"rabbitmqctl {args[0]} failed ({(done.stderr or done.stdout).strip()[:300]}); "
            "pass --broker-url with a vhost the benchmark may fill"
        )


@contextmanager
def fresh_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{os.environ.get('BENCH_DB_PREFIX', 'notifier_bench_')}{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def environment(
    database_url: str, broker_url: str, data_dir: Path, redis_url: str | None = None, **extra: str
) -> dict[str, str]:
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
    if redis_url:
        env["NOTIFIER_REDIS_URL"] = redis_url
    env.update(extra)
    return env


def notifier(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [str(BIN / "notifier"), *args], env=env, capture_output=True, text=True, check=True
    ).stdout


def create_key(env: dict[str, str]) -> str:
    notifier(env, "db", "upgrade")
    return notifier(env, "keys", "create", "--name", "bench").strip().splitlines()[-1]


@contextmanager
def keyed_stack(args: argparse.Namespace) -> Iterator[tuple[dict[str, str], str]]:
    """The services of ``add_service_options`` (own broker, own database) with the schema and
    an API key: the environment to run our processes with, and the key."""
    with (
        own_broker(args.broker, args.broker_url) as broker,
        fresh_database(args.database_url) as database_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        env = environment(database_url, broker, Path(tmp), args.redis_url)
        yield env, create_key(env)


@contextmanager
def process(
    args: list[str], env: dict[str, str], ready_url: str | None = None, timeout: float = 60
) -> Iterator[subprocess.Popen]:
    with tempfile.NamedTemporaryFile(
        prefix="bench-", suffix=".log", delete=False
    ) as log:  # kept to read
        proc = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )
    proc.log_path = log.name  # type: ignore[attr-defined]  # what it logged, for log-volume figures
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


def wrk_command(
    url: str, script: str, seconds: int, connections: int, threads: int = 2, timeout: int = 30
) -> list[str]:
    """The one wrk command line every benchmark runs (latency percentiles on, the Lua script
    given)."""
    return [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
        "--latency", "--timeout", f"{timeout}s", "-s", script, url,
    ]  # fmt: skip


def wrk(
    url: str,
    body: str,
    headers: dict[str, str],
    seconds: int,
    connections: int,
    threads: int = 2,
    timeout: int = 30,
) -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(body)}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    out = subprocess.run(
        wrk_command(url, script.name, seconds, connections, min(threads, connections), timeout),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


def _found(pattern: str, out: str) -> str:
    match = re.search(pattern, out)
    assert match, f"wrk printed no {pattern!r}"
    return match.group(1)


def parse_wrk(out: str) -> dict:
    def ms(value: str) -> float:
        match = re.match(r"([\d.]+)(\w+)", value)
        assert match, f"not a wrk duration: {value!r}"
        number, unit = match.groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)", out, flags=re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(_found(r"Requests/sec:\s+([\d.]+)", out)),
        "p50_ms": round(ms(percentiles["50"]), 2),
        "p99_ms": round(ms(percentiles["99"]), 2),
        "requests": int(_found(r"(\d+) requests in", out)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


def combined_rounds(runs: list[dict]) -> dict:
    """Rounds combined: summed requests over summed time, the worst p99, all errors."""
    return {
        "rps": round(sum(r["rps"] for r in runs) / len(runs), 1),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": [r["socket_errors"] for r in runs if r["socket_errors"]] or None,
        "rounds": [(r["rps"], r["p99_ms"]) for r in runs],
    }


def api_command(port: int, workers: int) -> list[str]:
    """``notifier api`` as the README runs it in production: ``workers`` processes on ``port``."""
    return [str(BIN / "notifier"), "api", "--port", str(port), "--workers", str(workers)]
