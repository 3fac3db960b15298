"""Shared readers for the deployment files under test: paths, YAML loading, worker lanes.

Kept free of pytest so every test module can import it (``from ._files import ...``).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DEPLOY = REPO / "deploy"
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
KUBERNETES = DEPLOY / "kubernetes"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
NGINX = DEPLOY / "nginx"

# The subcommands a deployment may run (the brief's fixed list). `dev` is deliberately absent:
# the embedded single-process mode is not for production.
ALLOWED_COMMANDS: frozenset[tuple[str, ...]] = frozenset(
    {
        ("api",),
        ("worker",),
        ("beat",),
        ("db", "upgrade"),
        ("status",),
        ("providers", "check"),
    }
)

# Every Prometheus metric the service exports, with its labels and type.
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "notifier_http_requests_total": ("counter", frozenset({"route", "method", "status"})),
    "notifier_http_request_duration_seconds": ("histogram", frozenset({"route"})),
    "notifier_notifications_accepted_total": ("counter", frozenset({"lane"})),
    "notifier_sends_total": ("counter", frozenset({"provider", "lane", "outcome"})),
    "notifier_provider_latency_seconds": ("histogram", frozenset({"provider", "lane"})),
    "notifier_time_to_send_seconds": ("histogram", frozenset({"lane"})),
    "notifier_retries_total": ("counter", frozenset({"lane"})),
    "notifier_suppressions_total": ("counter", frozenset({"channel", "reason"})),
    "notifier_circuit_state": ("gauge", frozenset({"provider", "lane"})),
    "notifier_queue_depth": ("gauge", frozenset({"queue"})),
    "notifier_beat_last_tick_timestamp_seconds": ("gauge", frozenset()),
    "notifier_rate_limit_fallbacks_total": ("counter", frozenset()),
    "notifier_live_workers": ("gauge", frozenset({"queue"})),
    "notifier_due_notifications": ("gauge", frozenset({"queue"})),
    "notifier_oldest_due_age_seconds": ("gauge", frozenset({"queue"})),
    "notifier_provider_account_refusals_total": ("counter", frozenset({"provider", "lane"})),
    "notifier_unconfirmed_total": ("counter", frozenset({"lane"})),
    "notifier_recovered_total": ("counter", frozenset({"lane", "outcome"})),
    "notifier_record_retries_total": ("counter", frozenset()),
    "notifier_record_abandoned_total": ("counter", frozenset()),
    "notifier_provider_rate_wait_seconds_total": ("counter", frozenset({"provider", "lane"})),
    "notifier_partition_default_rows": ("gauge", frozenset({"table"})),
}
# Labels Prometheus itself attaches to every scraped series.
TARGET_LABELS = frozenset({"job", "instance", "worker_group", "component", "pod"})


def series_names() -> dict[str, str]:
    """Every series name a query may use, mapped to the metric it belongs to."""
    names: dict[str, str] = {}
    for metric, (kind, _labels) in METRICS.items():
        names[metric] = metric
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[metric + suffix] = metric
    return names


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


def kubernetes_manifest_files() -> list[Path]:
    return sorted(p for p in KUBERNETES.rglob("*.yaml") if p.name != "kustomization.yaml")


def kubernetes_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in kubernetes_manifest_files():
        for doc in load_yaml_documents(path):
            yield path, doc


def command_list(command: str | list[str] | None) -> list[str]:
    """A compose `command:` as a list (the string form is split the way Compose splits it)."""
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command]


def lanes_argument(args: list[str]) -> list[str] | None:
    """The queues named by `worker --lanes a,b` (or `--lanes=a,b`); None when not a worker."""
    if not args or args[0] != "worker":
        return None
    for i, arg in enumerate(args):
        if arg == "--lanes" and i + 1 < len(args):
            value = args[i + 1]
            break
        if arg.startswith("--lanes="):
            value = arg.split("=", 1)[1]
            break
    else:
        raise AssertionError(f"worker command without --lanes: {args}")
    return [queue.strip() for queue in value.split(",") if queue.strip()]


def readme_processes() -> list[list[str]]:
    """The commands of the README's "Production processes" list: argv after `notifier`."""
    text = README.read_text()
    section = text.split("\n## Production processes\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line.split("#", 1)[0])
        if words:
            assert words[0] == "notifier", f"README process list runs {line!r}"
            commands.append(words[1:])
    return commands


def readme_worker_lanes() -> list[list[str]]:
    return [queues for args in readme_processes() if (queues := lanes_argument(args)) is not None]


def is_notifier_image(service: dict[str, Any]) -> bool:
    """Compose services built from deploy/Dockerfile (entry point `notifier`)."""
    build = service.get("build")
    if isinstance(build, dict):
        return build.get("dockerfile") == "deploy/Dockerfile"
    return False


def compose_worker_lanes() -> dict[str, list[str]]:
    lanes: dict[str, list[str]] = {}
    for name, service in compose()["services"].items():
        if not is_notifier_image(service):
            continue
        queues = lanes_argument(command_list(service.get("command")))
        if queues is not None:
            lanes[name] = queues
    return lanes


def deployment_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    template = doc["spec"]["template"]["spec"] if doc["kind"] != "CronJob" else None
    if template is None:
        template = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return list(template.get("initContainers", [])) + list(template["containers"])


def notifier_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    """(object name, container) for every container that runs the notifier image."""
    for _path, doc in kubernetes_objects():
        if doc["kind"] not in {"Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet"}:
            continue
        for container in deployment_containers(doc):
            if container["image"].split(":")[0].rsplit("/", 1)[-1] == "notifier":
                yield doc["metadata"]["name"], container


def kubernetes_worker_lanes() -> dict[str, list[str]]:
    lanes: dict[str, list[str]] = {}
    for name, container in notifier_containers():
        args = list(container.get("command", [])[1:]) + list(container.get("args", []))
        queues = lanes_argument(args)
        if queues is not None:
            lanes[name] = queues
    return lanes


def lane_category(queue: str) -> str | None:
    """'transactional' / 'promotional' for a lane queue, None for the service queues."""
    from providers.interface import Lane

    try:
        return Lane(queue).category.value
    except ValueError:
        return None
