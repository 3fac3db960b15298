"""PgBouncer (transaction pooling) in the scaled-out layouts: Compose and Kubernetes put it
between the long-running processes and PostgreSQL with NOTIFIER_DATABASE_POOLER=pgbouncer, keep
migrations on PostgreSQL directly, and hold PostgreSQL's share within its max_connections."""

from __future__ import annotations

import configparser
from typing import Any

from sqlalchemy.engine import make_url

from ._files import DEPLOY, KUBERNETES, REPO, compose, is_notifier_image, kubernetes_objects
from .test_compose import SERVICES, _environment

# PostgreSQL's default max_connections (100) minus room for migrations, consoles and monitoring
POSTGRES_SHARE = 90


def _mounted_database_url(service: dict) -> str:
    """The secret mounted where NOTIFIER_DATABASE_URL_FILE points."""
    path = _environment(service)["NOTIFIER_DATABASE_URL_FILE"].removeprefix("/run/secrets/")
    for secret in service["secrets"]:
        if isinstance(secret, str) and secret == path:
            return secret
        if isinstance(secret, dict) and secret.get("target", secret["source"]) == path:
            return str(secret["source"])
    raise AssertionError(f"{path} not mounted")


def _ini(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(comment_prefixes=(";", "#"))
    parser.read_string(text)
    return {section: dict(parser[section]) for section in parser.sections()}


def test_pgbouncer_pools_transactions_for_every_long_running_process() -> None:
    """The processes reach PostgreSQL through PgBouncer with the pooler setting; migrations
    go to PostgreSQL directly (DDL and its locks never share a pooled server session)."""
    bouncer = SERVICES["pgbouncer"]
    ini_config = compose()["configs"][bouncer["configs"][0]["source"]]
    ini = _ini((REPO / ini_config["file"]).read_text())
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert "host=postgres port=5432" in ini["databases"]["notifier"]
    assert int(ini["pgbouncer"]["max_db_connections"]) <= POSTGRES_SHARE
    assert ini["pgbouncer"]["auth_file"].removeprefix("/run/secrets/") in bouncer["secrets"]
    pooled = (DEPLOY / "secrets" / "notifier_database_pooled_url.example").read_text()
    direct = (DEPLOY / "secrets" / "notifier_database_url.example").read_text()
    assert "@pgbouncer:6432/" in pooled and "@postgres:5432/" in direct
    for name, service in SERVICES.items():
        if not is_notifier_image(service) or name == "flower":
            continue
        env = _environment(service)
        if name == "migrate":
            assert _mounted_database_url(service) == "notifier_database_url"
            assert env.get("NOTIFIER_DATABASE_POOLER", "none") == "none"
        else:
            assert _mounted_database_url(service) == "notifier_database_pooled_url", name
            assert env["NOTIFIER_DATABASE_POOLER"] == "pgbouncer", name


BY_KIND: dict[str, dict[str, dict[str, Any]]] = {}
for _path, _doc in kubernetes_objects():
    BY_KIND.setdefault(_doc["kind"], {})[_doc["metadata"]["name"]] = _doc


def test_kubernetes_pgbouncer_pools_transactions_for_the_notifier_pods() -> None:
    deployment = BY_KIND["Deployment"]["notifier-pgbouncer"]
    ini = _ini(BY_KIND["ConfigMap"]["notifier-pgbouncer"]["data"]["pgbouncer.ini"])
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    # PostgreSQL's share is per PgBouncer replica: all replicas together must fit
    total = deployment["spec"]["replicas"] * int(ini["pgbouncer"]["max_db_connections"])
    assert total <= POSTGRES_SHARE
    assert "notifier-pgbouncer" in BY_KIND["PodDisruptionBudget"]
    secret = BY_KIND["Secret"]["notifier-secrets"]["stringData"]
    userlist = ini["pgbouncer"]["auth_file"].removeprefix("/run/secrets/")
    assert userlist in secret
    pooled = make_url(secret["notifier_database_url"])
    assert pooled.host is not None
    service = BY_KIND["Service"][pooled.host.split(".")[0]]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert pooled.port == service["spec"]["ports"][0]["port"] == 6432
    assert make_url(secret["notifier_database_direct_url"]).port == 5432
    config = BY_KIND["ConfigMap"]["notifier-config"]["data"]
    assert config["NOTIFIER_DATABASE_POOLER"] == "pgbouncer"
    assert config["NOTIFIER_DATABASE_URL_FILE"] == "/run/secrets/notifier_database_url"
    listed = (KUBERNETES / "kustomization.yaml").read_text()
    assert "pgbouncer.yaml" in listed


def test_the_kubernetes_migration_job_bypasses_pgbouncer() -> None:
    job = BY_KIND["Job"]["notifier-migrate"]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["NOTIFIER_DATABASE_URL_FILE"] == "/run/secrets/notifier_database_direct_url"
    assert env["NOTIFIER_DATABASE_POOLER"] == "none"
