"""A private PgBouncer in transaction pooling mode, in front of an existing PostgreSQL.

Like the servers of ``tests/private_services.py`` it runs on a free port of 127.0.0.1 with its
files in a temporary directory and is stopped and removed on ``close()``. Its config has a ``*``
wildcard database entry (every database of the PostgreSQL behind it, created before or after it
started) and trust authentication, as the local test PostgreSQL has. PgBouncer refuses to run as
root, so under root it runs as the ``postgres`` system user (else ``nobody``).

``.ci/run`` starts the same setup on 6432 for its second pass of the PostgreSQL tests.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal

from tests.private_services import IN_CI, PrivateService, ServiceUnavailable, unprivileged_user


class PrivatePgBouncer(PrivateService):
    """``url`` is the ``postgres`` database through PgBouncer, as user ``postgres``."""

    name = "pgbouncer"
    stop_signal = signal.SIGINT  # "safe shutdown" would wait for clients; tests want it gone

    def __init__(self, backend_host: str, backend_port: int, pool_size: int = 20) -> None:
        """``pool_size``: server connections per database and user (1 makes every client share
        one, so whatever a client leaves on the server the next one meets)."""
        found = shutil.which("pgbouncer") or (
            "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
        )
        if found is None:
            raise ServiceUnavailable("pgbouncer is not installed")
        self.binary = found
        super().__init__()
        self.config = self.directory / "pgbouncer.ini"
        (self.directory / "userlist.txt").write_text('"postgres" ""\n')
        self.config.write_text(
            "[databases]\n"
            f"* = host={backend_host} port={backend_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.directory / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 500\n"
        )
        owner = self._user()
        if owner is not None:
            entry = pwd.getpwnam(owner)
            for path in (self.directory, self.config, self.directory / "userlist.txt"):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def _user(self) -> str | None:
        return unprivileged_user()

    def _command(self) -> list[str]:
        return [self.binary, str(self.config)]


def require_pgbouncer(
    backend_host: str, backend_port: int, pool_size: int = 20
) -> PrivatePgBouncer:
    """A started private PgBouncer: skipped when it is not installed (failed in CI)."""
    import pytest

    try:
        bouncer = PrivatePgBouncer(backend_host, backend_port, pool_size)
    except ServiceUnavailable as e:
        if IN_CI:
            pytest.fail(f"{e}, and CI promises it", pytrace=False)
        pytest.skip(f"{e}; install it to run this test")
    try:
        bouncer.start()
    except Exception:
        bouncer.close()
        raise
    return bouncer
