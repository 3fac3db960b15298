"""Private PostgreSQL, RabbitMQ and Redis instances that a test or benchmark may kill at will.

The local services are shared by everyone on this machine, so a test that restarts a broker or a
database starts its own instance of the installed server here, on free ports of 127.0.0.1 with
its data in a temporary directory, with the faults the tests need:

``start()``, ``stop()`` (a clean shutdown), ``kill()`` (SIGKILL of the whole process group, what
a crash or an OOM kill does), ``restart(down_seconds)`` (stop, stay down, start again on the same
port with the same data: clients must reconnect to the very same ``url``), ``pids()`` (for CPU
accounting) and ``close()`` (stop and remove the files; also on context exit and, for anything
left running, at interpreter exit).

* :class:`PrivatePostgres` runs ``initdb`` and ``postgres`` from ``/usr/lib/postgresql/*/bin``
  (or ``PATH``) with trust authentication for the user ``postgres``. PostgreSQL refuses to run as
  root, so under root the server runs as the ``postgres`` system user (else ``nobody``). It runs
  with ``fsync=off``: a SIGKILL of the server keeps what the OS page cache holds, and the shared
  disk is spared; a machine crash is not one of the faults simulated here.
* :class:`PrivateRabbitMQ` starts a second node of the installed ``rabbitmq-server`` with its
  own ``RABBITMQ_NODENAME``, ``RABBITMQ_NODE_PORT``, ``RABBITMQ_DIST_PORT``,
  ``RABBITMQ_MNESIA_BASE`` and ``RABBITMQ_LOG_BASE``, its own config and env files (so the
  system's ``rabbitmq.conf`` listener on 5672 and its plugins are not inherited: no management
  plugin) and its own Erlang cookie under a private ``HOME``. ``ctl(...)`` runs
  ``rabbitmqctl -n <node>`` with that environment (the Debian wrappers in /usr/sbin would switch
  to the rabbitmq user and its cookie, and log to the shared /var/log/rabbitmq).
* :class:`PrivateRedis` runs ``redis-server`` with no RDB snapshots and ``appendonly`` on or off.

A missing binary raises :class:`ServiceUnavailable`; :func:`require_private` turns that into a
pytest skip with the reason (a failure when ``CI=true``).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Self

from tests.private_processes import alive, free_port, port_open, server_processes

IN_CI = os.environ.get("CI", "").lower() == "true"
_LIVE: weakref.WeakSet[PrivateService] = weakref.WeakSet()


class ServiceUnavailable(RuntimeError):
    """The server's binaries are not installed (or cannot run here)."""


class PrivateService:
    """One server process (group) on a private port, with its data in ``self.directory``."""

    name = "service"
    start_timeout = 60.0
    stop_signal = signal.SIGTERM

    def __init__(self, port: int | None = None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=f"private-{self.name}-"))
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.directory / "server.log"
        self.starts = 0
        _LIVE.add(self)

    # -- what each kind provides; lifecycle below
    @property
    def url(self) -> str:
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _user(self) -> str | None:
        return None

    def _ready(self) -> bool:
        return port_open(self.port)

    def start(self) -> None:
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._command(),
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                start_new_session=True,
                user=self._user(),
            )
        deadline = time.monotonic() + self.start_timeout
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"private {self.name} did not start; see {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        self.starts += 1

    def stop(self, timeout: float = 30) -> None:
        """A clean shutdown: the server's own stop signal, SIGKILL if it takes longer than
        ``timeout``."""
        self._signal(self.stop_signal)
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._wait_port_closed()

    def kill(self) -> None:
        """SIGKILL of the server and every process it started, as a crash would end it."""
        if self.process is not None:
            victims = server_processes(self.process.pid)
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait(10)
            deadline = time.monotonic() + 10
            while any(map(alive, victims)) and time.monotonic() < deadline:
                time.sleep(0.05)
        self._wait_port_closed()

    def restart(self, down_seconds: float = 0.0, kill: bool = False) -> float:
        """Stop (or kill), stay down ``down_seconds``, start again; returns the seconds it was
        unreachable."""
        began = time.monotonic()
        self.kill() if kill else self.stop()
        time.sleep(down_seconds)
        self.start()
        return time.monotonic() - began

    def close(self) -> None:
        """Stop the server and remove its files."""
        if self.running:
            try:
                self.stop(timeout=15)
            except Exception:  # cleanup must not hide the test's own failure
                self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
        _LIVE.discard(self)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        return server_processes(self.process.pid) if self.process is not None else []

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def _wait_port_closed(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _postgres_bin(program: str) -> str:
    newest = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=lambda p: int(p.split("/")[4])
    )
    found = newest[-1] if newest else shutil.which(program)
    if found is None:
        raise ServiceUnavailable(
            f"PostgreSQL's {program} is in neither /usr/lib/postgresql/*/bin nor PATH"
        )
    return found


def unprivileged_user() -> str | None:
    """The user PostgreSQL and PgBouncer run as: none to switch to unless we are root, which
    both refuse to run as; then ``postgres`` if it exists, else ``nobody``."""
    if os.geteuid() != 0:
        return None
    for candidate in ("postgres", "nobody"):
        try:
            pwd.getpwnam(candidate)
            return candidate
        except KeyError:
            continue
    raise ServiceUnavailable("running as root and neither a 'postgres' nor a 'nobody' user exists")


class PrivatePostgres(PrivateService):
    """A private PostgreSQL cluster; ``url`` is its ``postgres`` database as user ``postgres``."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: disconnect clients (SIGTERM would wait for them)

    def __init__(self, port: int | None = None, max_connections: int = 200) -> None:
        self.initdb, self.postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
        super().__init__(port)
        self.max_connections = max_connections
        self.data = self.directory / "data"
        owner = self._user()
        if owner is not None:
            entry = pwd.getpwnam(owner)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                self.initdb,
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=self.directory,
            user=owner,
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def _user(self) -> str | None:
        return unprivileged_user()

    def _command(self) -> list[str]:
        return [
            self.postgres,
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.directory}",
            "-c",
            f"max_connections={self.max_connections}",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "shared_buffers=64MB",
        ]

    def _ready(self) -> bool:
        if not port_open(self.port):
            return False
        import psycopg

        try:
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=2
            ):
                return True
        except psycopg.OperationalError:  # "the database system is starting up"
            return False


def _rabbitmq_bin(program: str) -> str:
    direct = Path("/usr/lib/rabbitmq/bin") / program
    found = str(direct) if direct.exists() else shutil.which(program)
    if found is None:
        raise ServiceUnavailable(f"RabbitMQ's {program} is not installed")
    return found


class PrivateRabbitMQ(PrivateService):
    """A second RabbitMQ node; ``url`` is its default vhost as guest (private, so purging it is
    fine)."""

    name = "rabbitmq"
    start_timeout = 120.0

    def __init__(self, port: int | None = None) -> None:
        self.server, self.rabbitmqctl = (
            _rabbitmq_bin("rabbitmq-server"),
            _rabbitmq_bin("rabbitmqctl"),
        )
        super().__init__(port)
        # rabbitmqctl talks to the node over Erlang distribution from ports dist+10000..dist+10010.
        self.dist_port = free_port(40000, 55000)
        self.nodename = f"private_{secrets.token_hex(4)}@localhost"
        self.home = self.directory / "home"
        for sub in ("home", "mnesia", "log"):
            (self.directory / sub).mkdir()
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "disk_free_limit.absolute = 50MB\n"
            "vm_memory_high_watermark.relative = 0.2\n"
            "log.console = false\n"
            "log.file.level = warning\n"
        )
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq-env.conf").write_text("")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        d = self.directory
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _command(self) -> list[str]:  # ready (the base class's check) once the AMQP listener opens
        return [self.server]

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n <this node> args...`` with this node's environment and cookie."""
        return subprocess.run(
            [self.rabbitmqctl, "-n", self.nodename, *args],
            env=self._env(),
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.directory,
        )


class PrivateRedis(PrivateService):
    """A private redis-server; ``url`` is its DB 0. No RDB snapshots; AOF when ``appendonly``."""

    name = "redis"

    def __init__(self, port: int | None = None, appendonly: bool = False) -> None:
        self.server = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(self.server).exists():
            raise ServiceUnavailable("redis-server is not installed")
        self.appendonly = appendonly
        super().__init__(port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            self.server,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
            "--protected-mode",
            "yes",
        ]

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


KINDS: dict[str, type[PrivateService]] = {
    "postgres": PrivatePostgres,
    "rabbitmq": PrivateRabbitMQ,
    "redis": PrivateRedis,
}


def require_private(kind: str, **options: Any) -> PrivateService:
    """A started private ``kind`` for a test: skipped when its binaries are missing (failed in
    CI)."""
    import pytest

    try:
        service = KINDS[kind](**options)
    except ServiceUnavailable as e:
        if IN_CI:
            pytest.fail(f"{e}, and CI promises it", pytrace=False)
        pytest.skip(f"{e}; install it to run this test")
    try:
        service.start()
    except Exception:
        service.close()
        raise
    return service


@atexit.register
def _close_all() -> None:
    for service in list(_LIVE):
        service.close()
