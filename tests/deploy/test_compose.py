"""docker-compose.yml: it parses, everything it names exists, and every queue has a consumer."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from notifier.tasks import ALL_QUEUES, CAMPAIGNS, MAINTENANCE

from ._files import (
    COMPOSE_FILE,
    DEPLOY,
    REPO,
    command_list,
    compose,
    compose_worker_lanes,
    is_notifier_image,
    lane_category,
    load_yaml,
)

SERVICES = compose()["services"]
REQUIRED_SERVICES = {
    "postgres",
    "pgbouncer",
    "rabbitmq",
    "redis",
    "migrate",
    "api",
    "nginx",
    "worker-transactional",
    "worker-promotional",
    "beat",
    "flower",
    "prometheus",
    "grafana",
}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY$|_DSN$|_URL$)")
# URLs that carry no credentials may stay plain environment values.
PLAIN_URLS = {"NOTIFIER_PUBLIC_URL", "NOTIFIER_HEALTHCHECK_URL"}


def _list_or_keys(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value)
    assert isinstance(value, list)
    return [item if isinstance(item, str) else item["source"] for item in value]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def test_compose_parses_with_the_required_services() -> None:
    assert isinstance(SERVICES, dict)
    assert REQUIRED_SERVICES <= set(SERVICES), REQUIRED_SERVICES - set(SERVICES)


def test_every_depends_on_names_a_service_with_a_valid_condition() -> None:
    for name, service in SERVICES.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {target: {"condition": "service_started"} for target in depends}
        for target, spec in depends.items():
            assert target in SERVICES, f"{name} depends on unknown service {target}"
            assert target != name
            condition = spec["condition"]
            assert condition in {
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            }
            if condition == "service_healthy":
                target_service = SERVICES[target]
                has_check = "healthcheck" in target_service and not target_service[
                    "healthcheck"
                ].get("disable")
                # the notifier image carries a HEALTHCHECK of its own (GET /healthz)
                inherited = (
                    is_notifier_image(target_service) and "healthcheck" not in target_service
                )
                assert has_check or inherited, (
                    f"{name} waits for {target} to be healthy, it has no check"
                )


def test_application_services_wait_for_migrations_and_healthy_backing_services() -> None:
    for name, service in SERVICES.items():
        if not is_notifier_image(service) or name == "migrate":
            continue
        depends = service["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        for backing in ("postgres", "pgbouncer", "rabbitmq", "redis"):
            assert depends[backing]["condition"] == "service_healthy", (name, backing)


def test_backing_services_have_healthchecks() -> None:
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    for name in ("pgbouncer", "rabbitmq", "redis", "nginx", "prometheus", "grafana", "flower"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_restart_policies() -> None:
    assert SERVICES["migrate"]["restart"] == "no"
    for name, service in SERVICES.items():
        if name != "migrate":
            assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name


def test_every_bind_mount_build_config_and_env_file_exists() -> None:
    top_volumes = set(compose().get("volumes") or {})
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in top_volumes, f"{name}: named volume {source} not declared"
        env_files = service.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            assert (REPO / path).exists(), f"{name}: env_file {path} does not exist"
        build = service.get("build")
        if isinstance(build, dict):
            context = REPO / build.get("context", ".")
            assert context.is_dir()
            assert (context / build.get("dockerfile", "Dockerfile")).is_file()
        for config in _list_or_keys(service.get("configs")):
            assert config in compose()["configs"], f"{name}: config {config} not declared"
    for name, config in compose().get("configs", {}).items():
        assert (REPO / config["file"]).is_file(), f"config {name}: {config['file']} missing"


def test_every_secret_is_declared_and_has_a_committed_example_only() -> None:
    secrets = compose()["secrets"]
    for name, service in SERVICES.items():
        for secret in _list_or_keys(service.get("secrets")):
            assert secret in secrets, f"{name} uses undeclared secret {secret}"
    for name, secret in secrets.items():
        path = REPO / secret["file"]
        assert path.parent == DEPLOY / "secrets", f"secret {name} outside deploy/secrets"
        example = path.with_name(path.name + ".example")
        assert path.exists() or example.exists(), f"secret {name}: neither {path} nor its .example"
        if example.exists():
            assert "CHANGE-ME" in example.read_text(), f"{example} looks like a real secret"
    assert (DEPLOY / "secrets" / "README.md").is_file()


def test_only_secret_templates_are_tracked_by_git() -> None:
    result = subprocess.run(
        ["git", "ls-files", "--others", "--cached", "--exclude-standard", "deploy/secrets"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"not a git work tree: {result.stderr.strip()}")
    names = {Path(line).name for line in result.stdout.split()}
    assert names, "deploy/secrets has no tracked files"
    for name in names:
        assert name in {"README.md", ".gitignore"} or name.endswith(".example"), name


def test_secrets_are_files_not_environment_values() -> None:
    for name, service in SERVICES.items():
        mounted = {
            (s if isinstance(s, str) else s.get("target", s["source"]))
            for s in service.get("secrets", [])
        }
        for key, value in _environment(service).items():
            if key.endswith("_FILE"):
                assert value.startswith("/run/secrets/"), (name, key, value)
                assert value.removeprefix("/run/secrets/") in mounted, (name, key, "not mounted")
            elif SECRET_NAME.search(key) and key not in PLAIN_URLS:
                pytest.fail(f"{name}: {key} passes a secret as an environment value")


def test_only_nginx_publishes_ports() -> None:
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"nginx"}


def test_ops_override_publishes_consoles_on_localhost_only() -> None:
    override = load_yaml(DEPLOY / "compose" / "ops-ports.yml")
    for name, service in override["services"].items():
        assert name in SERVICES
        for port in service["ports"]:
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_app_services_build_the_one_image() -> None:
    app = [s for s in SERVICES.values() if is_notifier_image(s)]
    assert len(app) >= 5
    assert len({s["image"] for s in app}) == 1
    assert all(s["build"]["context"] == "." for s in app)


def test_every_queue_is_consumed_by_a_compose_worker() -> None:
    lanes = compose_worker_lanes()
    consumed = {queue for queues in lanes.values() for queue in queues}
    assert set(ALL_QUEUES) <= consumed, f"no consumer for {set(ALL_QUEUES) - consumed}"
    assert consumed <= set(ALL_QUEUES), f"unknown queues {consumed - set(ALL_QUEUES)}"
    assert set(lanes) == {"worker-transactional", "worker-promotional"}


def test_promotional_and_transactional_lanes_never_share_a_compose_worker() -> None:
    for name, queues in compose_worker_lanes().items():
        categories = {lane_category(q) for q in queues} - {None}
        assert len(categories) <= 1, f"{name} mixes {categories}: {queues}"
        if CAMPAIGNS in queues:
            assert "transactional" not in categories, f"{name} runs campaigns beside OTPs"


def test_compose_lane_groups_are_the_documented_ones() -> None:
    lanes = {name: set(queues) for name, queues in compose_worker_lanes().items()}
    assert lanes["worker-transactional"] == {
        "email.transactional",
        "sms.transactional",
        "push.transactional",
        "receipts",
        "webhooks",
        MAINTENANCE,
    }
    assert lanes["worker-promotional"] == {
        "email.promotional",
        "sms.promotional",
        "push.promotional",
        "campaigns",
        MAINTENANCE,
    }


def test_every_compose_worker_also_runs_the_safety_nets() -> None:
    """The sweeper must not depend on one worker being healthy: every worker consumes
    maintenance."""
    for name, queues in compose_worker_lanes().items():
        assert MAINTENANCE in queues, f"{name} does not consume {MAINTENANCE}"


def test_exactly_one_beat() -> None:
    beats = [
        (name, service)
        for name, service in SERVICES.items()
        if is_notifier_image(service) and command_list(service.get("command"))[:1] == ["beat"]
    ]
    assert len(beats) == 1, [name for name, _ in beats]
    _name, service = beats[0]
    assert service.get("deploy", {}).get("replicas", 1) == 1


def test_compose_file_is_at_the_repo_root() -> None:
    assert COMPOSE_FILE.parent == REPO
