"""Kubernetes manifests: schema-valid, consistent with each other, and every queue consumed.

Core kinds are validated offline against the Kubernetes OpenAPI schemas bundled with the
`kubernetes-validate` package (strict: unknown fields fail). KEDA's CRDs are not in those
schemas; they are checked against the minimal JSON schema below, which covers the fields this
project uses (KEDA 2.x `keda.sh/v1alpha1`).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from notifier.tasks import ALL_QUEUES, CAMPAIGNS, MAINTENANCE

from ._files import (
    KUBERNETES,
    kubernetes_manifest_files,
    kubernetes_objects,
    kubernetes_worker_lanes,
    lane_category,
    load_yaml,
    notifier_containers,
)

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="pip install kubernetes-validate (bundles the schemas)"
)

KUBERNETES_VERSION = "1.30.0"  # the oldest release these manifests promise to work on
CRD_GROUPS = ("keda.sh/",)

OBJECTS = list(kubernetes_objects())
BY_KIND: dict[str, dict[str, dict[str, Any]]] = {}
for _path, _doc in OBJECTS:
    BY_KIND.setdefault(_doc["kind"], {})[_doc["metadata"]["name"]] = _doc

_name_ref = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "metadata": {"type": "object", "required": ["name", "namespace"]},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["scaleTargetRef", "triggers"],
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": {"type": "string"},
                            "envSourceContainerName": {"type": "string"},
                        },
                    },
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                    "idleReplicaCount": {"type": "integer", "minimum": 0},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "fallback": {"type": "object"},
                    "advanced": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "restoreToOriginalReplicaCount": {"type": "boolean"},
                            "horizontalPodAutoscalerConfig": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "behavior": {"type": "object"},
                                },
                            },
                            "scalingModifiers": {"type": "object"},
                        },
                    },
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"type": "string"},
                                "name": {"type": "string"},
                                "useCachedMetrics": {"type": "boolean"},
                                "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                # KEDA trigger metadata values are strings, always
                                "metadata": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "authenticationRef": _name_ref,
                            },
                        },
                    },
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "metadata": {"type": "object", "required": ["name", "namespace"]},
            "spec": {
                "type": "object",
                "minProperties": 1,
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {
                                "parameter": {"type": "string"},
                                "name": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        },
                    },
                    "env": {"type": "array"},
                    "podIdentity": {"type": "object"},
                },
            },
        },
    },
}
RABBITMQ_TRIGGER = {
    "type": "object",
    "required": ["queueName", "mode", "value"],
    "properties": {
        "protocol": {"enum": ["amqp", "http", "auto"]},
        "mode": {"enum": ["QueueLength", "MessageRate"]},
        "value": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
        "queueName": {"type": "string"},
        "vhostName": {"type": "string"},
    },
}


def _id(item: tuple[Any, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path.relative_to(KUBERNETES)}:{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("item", OBJECTS, ids=[_id(o) for o in OBJECTS])
def test_manifest_is_schema_valid(item: tuple[Any, dict[str, Any]]) -> None:
    _path, doc = item
    if doc["apiVersion"].startswith(CRD_GROUPS):
        jsonschema.validate(doc, KEDA_SCHEMAS[doc["kind"]])
        for trigger in doc["spec"].get("triggers", []):
            if trigger["type"] == "rabbitmq":
                jsonschema.validate(trigger["metadata"], RABBITMQ_TRIGGER)
        return
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_schema_check_works_offline_and_rejects_unknown_fields() -> None:
    deployment = copy.deepcopy(BY_KIND["Deployment"]["notifier-api"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    scaled = copy.deepcopy(next(iter(BY_KIND["ScaledObject"].values())))
    scaled["spec"]["triggers"][0]["metadata"]["value"] = 200
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, KEDA_SCHEMAS["ScaledObject"])


def test_every_object_is_namespaced_to_notifier() -> None:
    for _path, doc in OBJECTS:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "notifier", _id((_path, doc))


def test_kustomizations_list_every_manifest_but_the_secret_example_and_migration() -> None:
    # the Secret is created out of band; the migration Job runs before `apply -k` (README)
    listed = set()
    for kustomization in KUBERNETES.rglob("kustomization.yaml"):
        for resource in load_yaml(kustomization)["resources"]:
            path = kustomization.parent / resource
            assert path.is_file(), f"{kustomization}: {resource} missing"
            listed.add(path)
    unlisted = set(kubernetes_manifest_files()) - listed
    assert unlisted == {KUBERNETES / "secret.example.yaml", KUBERNETES / "migrate-job.yaml"}


def test_secret_example_holds_no_real_values() -> None:
    secret = BY_KIND["Secret"]["notifier-secrets"]
    for key, value in secret["stringData"].items():
        assert "CHANGE-ME" in value, key


def test_secret_files_in_the_configmap_are_keys_of_the_mounted_secret() -> None:
    config = BY_KIND["ConfigMap"]["notifier-config"]["data"]
    keys = set(BY_KIND["Secret"]["notifier-secrets"]["stringData"])
    file_settings = {k: v for k, v in config.items() if k.endswith("_FILE")}
    assert "NOTIFIER_SECRET_KEY_FILE" in file_settings
    for setting, path in file_settings.items():
        assert path.startswith("/run/secrets/"), setting
        assert path.removeprefix("/run/secrets/") in keys, setting
    for name, container in notifier_containers():
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "/run/secrets" in mounts, name


def test_every_queue_is_consumed_by_a_worker_deployment() -> None:
    lanes = kubernetes_worker_lanes()
    consumed = [queue for queues in lanes.values() for queue in queues]
    assert set(ALL_QUEUES) <= set(consumed), f"no consumer for {set(ALL_QUEUES) - set(consumed)}"
    assert set(consumed) <= set(ALL_QUEUES), f"unknown {set(consumed) - set(ALL_QUEUES)}"
    shared = [queue for queue in consumed if queue != MAINTENANCE]
    assert len(shared) == len(set(shared)), "a lane or service queue is consumed by two Deployments"
    for name, queues in lanes.items():  # the safety nets run as long as any worker pod is alive
        assert MAINTENANCE in queues, f"{name} does not consume {MAINTENANCE}"


def test_promotional_and_transactional_lanes_never_share_a_deployment() -> None:
    for name, queues in kubernetes_worker_lanes().items():
        categories = {lane_category(q) for q in queues} - {None}
        assert len(categories) <= 1, f"{name} mixes {categories}"
        if CAMPAIGNS in queues:
            assert "transactional" not in categories, name


def test_each_worker_deployment_has_resources_probes_and_a_pdb() -> None:
    pdb_selectors = [
        p["spec"]["selector"]["matchLabels"] for p in BY_KIND["PodDisruptionBudget"].values()
    ]
    for name in kubernetes_worker_lanes():
        deployment = BY_KIND["Deployment"][name]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["requests"]["cpu"], name
        assert container["resources"]["limits"]["memory"], name
        assert container["livenessProbe"], name
        assert container["readinessProbe"], name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(sel.items() <= labels.items() for sel in pdb_selectors), f"{name}: no PDB"
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60


def test_each_worker_deployment_is_scaled_by_keda_on_exactly_its_queues() -> None:
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in BY_KIND["ScaledObject"].values()}
    auths = set(BY_KIND["TriggerAuthentication"])
    for name, queues in kubernetes_worker_lanes().items():
        assert name in scaled, f"{name} has no ScaledObject"
        triggers = scaled[name]["spec"]["triggers"]
        # maintenance, consumed by every Deployment, says nothing about one group's load
        assert {t["metadata"]["queueName"] for t in triggers} == set(queues) - {MAINTENANCE}, name
        for trigger in triggers:
            assert trigger["type"] == "rabbitmq"
            assert trigger["authenticationRef"]["name"] in auths
    assert set(scaled) <= set(BY_KIND["Deployment"])
    assert "notifier-api" not in scaled and "notifier-beat" not in scaled
    for auth in BY_KIND["TriggerAuthentication"].values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in BY_KIND["Secret"][ref["name"]]["stringData"]


def test_exactly_one_beat_with_recreate() -> None:
    beats = [
        name
        for name, container in notifier_containers()
        if (container.get("args") or [None])[0] == "beat"
    ]
    assert beats == ["notifier-beat"]
    beat = BY_KIND["Deployment"]["notifier-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in BY_KIND["HorizontalPodAutoscaler"].values()
    }
    assert "notifier-beat" not in targets


def test_api_probes_service_pdb_and_hpa() -> None:
    api = BY_KIND["Deployment"]["notifier-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    labels = api["spec"]["template"]["metadata"]["labels"]
    service = BY_KIND["Service"]["notifier-api"]
    assert service["spec"]["selector"].items() <= labels.items()
    pdb = BY_KIND["PodDisruptionBudget"]["notifier-api"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = BY_KIND["HorizontalPodAutoscaler"]["notifier-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "notifier-api"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2


def test_ingress_never_routes_internal_endpoints() -> None:
    for ingress in BY_KIND["Ingress"].values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["path"] in {
                    "/v1/",
                    "/support/",
                    "/u/",
                    "/healthz",
                    "/v1/notifications/batch",
                    "/v1/audiences/[^/]+/import",  # CSV imports, streamed (256 MiB)
                }
                assert path["path"] != "/" and not path["path"].startswith(("/metrics", "/readyz"))
                backend = path["backend"]["service"]["name"]
                assert backend in BY_KIND["Service"]


def test_migration_job_runs_db_upgrade_once() -> None:
    job = BY_KIND["Job"]["notifier-migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]


def test_containers_run_unprivileged() -> None:
    for _path, doc in OBJECTS:
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert pod["serviceAccountName"] == "notifier", doc["metadata"]["name"]
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"]["drop"] == ["ALL"]
