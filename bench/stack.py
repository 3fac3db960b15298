"""The whole system as an operator runs it, on private infrastructure the chaos benchmark may break.

:class:`Stack` starts a private PostgreSQL, a private broker (a RabbitMQ node, or a Redis server
of its own) and a private Redis for rate limits (``tests/private_services.py``), the counting SMTP
sink (``bench/smtp_sink.py``), and the processes of the README's "Production processes":
``notifier db upgrade``, ``notifier api``, ``notifier worker``s and one ``notifier beat``. Every
process runs in its own session so a SIGKILL takes its whole group, and a process that exits on
its own is counted and started again after ``restart_delay`` seconds, as the deployments'
``restart: unless-stopped`` would. Logs go to ``<directory>/logs``.

The workers consume the README's transactional lane list **plus ``maintenance``**: the README's
list leaves it out, which would leave the sweeper off (a known gap of the product, filed with the
chaos issue). Safety-net intervals are short so a benchmark does not wait minutes: see
``fast_safety_nets``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Self

import httpx

from bench.common import BIN, ROOT, create_key, environment, free_port, fresh_database
from tests.private_processes import port_open
from tests.private_services import (
    PrivatePostgres,
    PrivateRabbitMQ,
    PrivateRedis,
    PrivateService,
)

WORKER_LANES = (
    "sms.transactional,email.transactional,push.transactional,receipts,webhooks,maintenance"
)


def fast_safety_nets(sending_timeout: float) -> dict[str, str]:
    """Sweeper every 2 s, re-publish after 15 s, re-send ``sending`` rows after ``sending_timeout``.

    The product's default for the last is 300 s (``NOTIFIER_SENDING_TIMEOUT_SECONDS``); a benchmark
    that waited for it would take minutes per fault, so the figures it prints come with the value.
    """
    return {
        "NOTIFIER_SWEEP_INTERVAL_SECONDS": "2",
        "NOTIFIER_QUEUED_STALE_SECONDS": "15",
        "NOTIFIER_SENDING_TIMEOUT_SECONDS": f"{sending_timeout:g}",
    }


def providers_file(directory: Path, sink_port: int) -> Path:
    path = directory / "providers.toml"
    path.write_text(
        f'[providers.sink]\ntype = "smtp"\nhost = "127.0.0.1"\nport = {sink_port}\ntls = "none"\n'
        'from_address = "bench@example.com"\nhelo_hostname = "bench.example.com"\n'
        "timeout_seconds = 10\n"
        '[lanes]\n"email.transactional" = ["sink"]\n'
    )
    return path


class Proc:
    """One of our processes: started, SIGKILLed, restarted; counts the times it exited by itself."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.args, self.env, self.logs = name, args, env, logs
        self.popen: subprocess.Popen[bytes] | None = None
        self.unexpected_exits = 0
        self.starts = 0
        self.expected = False  # set while we stop or kill it on purpose
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start it unless it runs: the supervisor and a fault may both restart a process that
        died."""
        with self._lock:
            if self.popen is not None and self.popen.poll() is None:
                return
            with open(self.logs / f"{self.name}.log", "ab") as log:
                self.popen = subprocess.Popen(
                    self.args,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    cwd=ROOT,
                )
            self.starts += 1
            self.expected = False

    def signal(self, sig: int) -> None:
        self.expected = True
        if self.popen is not None and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)

    @property
    def pgid(self) -> int | None:
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None

    def exited_by_itself(self) -> bool:
        return self.popen is not None and self.popen.poll() is not None and not self.expected


class External:
    """A service given by URL (``--database-url`` etc.): used as it is, never restarted or
    purged."""

    running = True
    process = None

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def restart(self, *args: object, **kwargs: object) -> float:
        raise SystemExit(
            f"the {self.name} at {self.url} was given by URL: chaos restarts only private instances"
        )

    kill = stop = restart


class Stack:
    """Everything one scenario runs; see the module docstring. Use as a context manager."""

    def __init__(
        self,
        directory: Path,
        broker: str,
        *,
        workers: int = 2,
        concurrency: int = 16,
        api_workers: int = 1,
        sink_latency_ms: float = 20,
        sending_timeout: float = 15,
        redis_appendonly: bool = False,
        api_port: int = 0,
        sink_port: int = 0,
        restart_delay: float = 5.0,
        urls: dict[str, str | None] | None = None,
        ports: dict[str, int | None] | None = None,
    ) -> None:
        self.directory = directory
        self.logs = directory / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.broker_kind = broker
        self.restart_delay = restart_delay
        urls, ports = urls or {}, ports or {}
        self.postgres: PrivateService | External = (
            External("PostgreSQL", database)
            if (database := urls.get("database"))
            else PrivatePostgres(ports.get("postgres"))
        )
        self.redis: PrivateService | External = (
            External("Redis", redis_url)
            if (redis_url := urls.get("redis"))
            else PrivateRedis(ports.get("redis"))
        )
        self.broker: PrivateService | External
        if broker_url := urls.get("broker"):
            self.broker = External("broker", broker_url)
        elif broker == "rabbitmq":
            self.broker = PrivateRabbitMQ(ports.get("broker"))
        else:
            self.broker = PrivateRedis(ports.get("broker"), appendonly=redis_appendonly)
        self._database = ExitStack()
        self.services = [self.postgres, self.redis, self.broker]
        self.api_port = api_port or free_port()
        self.sink_port = sink_port or free_port()
        self.sink_file = directory / "sink.tsv"
        self.options = {
            "workers": workers,
            "concurrency": concurrency,
            "api_workers": api_workers,
            "sink_latency_ms": sink_latency_ms,
            "sending_timeout": sending_timeout,
        }
        self.procs: list[Proc] = []
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        for service in self.services:
            service.start()
        if isinstance(self.postgres, PrivatePostgres):
            self.database_url = self.postgres.create_database("notifier")
        else:  # a server of someone else's: a database of our own in it, dropped at the end
            self.database_url = self._database.enter_context(fresh_database(self.postgres.url))
        database_url = self.database_url
        o = self.options
        self.env = environment(
            database_url,
            self.broker.url,
            self.directory,
            NOTIFIER_REDIS_URL=self.redis.url,
            NOTIFIER_PROVIDERS_FILE=str(providers_file(self.directory, self.sink_port)),
            NOTIFIER_METRICS_PORT=str(free_port()),
            NOTIFIER_LOG_LEVEL="INFO",
            **fast_safety_nets(o["sending_timeout"]),
        )
        self.key = create_key(self.env)
        self.sink = Proc(
            "sink",
            [
                str(BIN / "python"),
                "-m",
                "bench.smtp_sink",
                "--port",
                str(self.sink_port),
                "--out",
                str(self.sink_file),
                "--latency-ms",
                str(o["sink_latency_ms"]),
            ],
            dict(os.environ),
            self.logs,
        )
        self.api = Proc(
            "api",
            [
                str(BIN / "notifier"),
                "api",
                "--port",
                str(self.api_port),
                "--workers",
                str(o["api_workers"]),
            ],
            self.env,
            self.logs,
        )
        self.workers = [
            Proc(
                f"worker{i}",
                [
                    str(BIN / "notifier"),
                    "worker",
                    "--lanes",
                    WORKER_LANES,
                    "--concurrency",
                    str(o["concurrency"]),
                ],
                self.env,
                self.logs,
            )
            for i in range(int(o["workers"]))
        ]
        self.beat = Proc("beat", [str(BIN / "notifier"), "beat"], self.env, self.logs)
        self.procs = [self.sink, self.api, *self.workers, self.beat]
        for proc in self.procs:
            proc.start()
        self.wait_api()
        deadline = time.monotonic() + 30
        while not port_open(self.sink_port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._watching.set()
        self._watcher.start()

    def wait_api(self, timeout: float = 60) -> float:
        """Seconds until ``/healthz`` answers."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"notifier api did not answer; see {self.logs / 'api.log'}")

    def _watch(self) -> None:
        """The supervisor: restart what exited by itself after ``restart_delay`` (and count it)."""
        while self._watching.is_set():
            for proc in self.procs:
                if proc.exited_by_itself():
                    proc.unexpected_exits += 1
                    proc.expected = True
                    threading.Timer(
                        self.restart_delay, self._restart_if_watching, args=(proc,)
                    ).start()
            time.sleep(0.2)

    def _restart_if_watching(self, proc: Proc) -> None:
        if self._watching.is_set():
            proc.start()

    def unexpected_exits(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for proc in self.procs:
            counts[proc.name.rstrip("0123456789")] += proc.unexpected_exits
        return {name: n for name, n in counts.items() if n}

    def close(self) -> None:
        self._watching.clear()
        if self._watcher is not None:
            self._watcher.join()
        for proc in reversed(self.procs):
            proc.stop()
        self._database.close()
        for service in self.services:
            service.close()
