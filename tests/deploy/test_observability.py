"""Prometheus scrape config, alert rules and the Grafana dashboard: they parse, and they use
only the metrics the service exports (with the labels those metrics carry).

`promtool` runs too when it is installed (Debian: `apt-get install prometheus`); without it
the structural checks in `_promql` stand in, and the promtool tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from . import _promql
from ._files import GRAFANA, METRICS, PROMETHEUS, compose, load_yaml

ALERTS = load_yaml(PROMETHEUS / "alerts.yml")
RULES = [rule for group in ALERTS["groups"] for rule in group["rules"]]
DASHBOARD = json.loads((GRAFANA / "dashboards" / "notifier.json").read_text())


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat = []
    for panel in panels:
        flat.append(panel)
        flat.extend(_panels(panel.get("panels", [])))
    return flat


PANELS = _panels(DASHBOARD["panels"])
DASHBOARD_EXPRS = [
    (panel["title"], target["expr"])
    for panel in PANELS
    for target in panel.get("targets", [])
    if "expr" in target
]


# --------------------------------------------------------------------------- alert rules


def test_alert_rules_are_well_formed() -> None:
    assert ALERTS["groups"]
    names = [rule["alert"] for rule in RULES]
    assert len(names) == len(set(names)), "duplicate alert names"
    for group in ALERTS["groups"]:
        assert group["name"] and group["rules"]
    for rule in RULES:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        if "for" in rule:
            assert str(rule["for"])[-1] in "smhd", rule["alert"]


@pytest.mark.parametrize("rule", RULES, ids=[r["alert"] for r in RULES])
def test_alert_expression_uses_only_known_metrics_and_labels(rule: dict[str, Any]) -> None:
    assert not _promql.unknown_series(rule["expr"])
    assert not _promql.check(rule["expr"]), rule["expr"]


def test_the_required_alerts_exist() -> None:
    by_metric: dict[str, list[str]] = {}
    for rule in RULES:
        for metric in _promql.metrics(rule["expr"]):
            by_metric.setdefault(metric, []).append(rule["alert"])
    # lane backlog growing, provider error rate, circuit open, time-to-send p95, beat ticking
    for metric in (
        "notifier_queue_depth",
        "notifier_sends_total",
        "notifier_circuit_state",
        "notifier_time_to_send_seconds",
        "notifier_beat_last_tick_timestamp_seconds",
    ):
        assert metric in by_metric, f"no alert on {metric}"
    backlog = [r for r in RULES if "notifier_queue_depth" in r["expr"]]
    assert any("deriv(" in r["expr"] for r in backlog), "no alert on a *growing* backlog"
    assert any("== 2" in r["expr"] for r in RULES if "notifier_circuit_state" in r["expr"])
    assert any("histogram_quantile(0.95" in r["expr"] for r in RULES)


def test_structural_check_catches_invented_names() -> None:
    assert _promql.unknown_series("rate(notifier_sent_total[5m])") == {"notifier_sent_total"}
    assert _promql.check('notifier_circuit_state{queue="x"} == 2')
    assert _promql.check("sum by (provider) (rate(notifier_retries_total[5m]))")
    assert _promql.check("sum(rate(notifier_retries_total[5m])")
    assert _promql.check("rate(queue_depth[5m])")
    assert not _promql.check('sum by (lane) (rate(notifier_retries_total{lane=~".+"}[5m]))')


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return path


def test_promtool_check_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", "alerts.yml"],
        check=False,
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_for_the_alerts() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", "alerts.test.yml"],
        check=False,
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config(tmp_path: Path) -> None:
    # Only the Compose configuration: Debian's Prometheus build leaves out Kubernetes service
    # discovery, so its promtool cannot read prometheus-kubernetes.yml (checked structurally).
    text = (PROMETHEUS / "prometheus.yml").read_text()
    text = text.replace("/etc/prometheus/alerts.yml", str(PROMETHEUS / "alerts.yml"))
    config = tmp_path / "prometheus.yml"
    config.write_text(text)
    result = subprocess.run(
        [_promtool(), "check", "config", str(config)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_scrape_config_keeps_annotated_notifier_pods() -> None:
    config = load_yaml(PROMETHEUS / "prometheus-kubernetes.yml")
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert keep[0]["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert [Path(f).name for f in config["rule_files"]] == ["alerts.yml"]


# --------------------------------------------------------------------------- scrape config


def test_prometheus_scrapes_api_workers_and_beat() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / Path(rule_file).name).is_file()
        assert rule_file.startswith("/etc/prometheus/")
    targets: dict[str, str] = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                targets[name] = str(sd["port"])
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets[host] = port
    services = compose()["services"]
    assert targets["api"] == "8000"
    for name in services:
        if name.startswith("worker-") or name == "beat":
            assert targets.get(name) == "9100", f"{name} is not scraped on 9100"
    for host in targets:
        assert host in services or host == "127.0.0.1", host
    mount = "./deploy/prometheus:/etc/prometheus:ro"
    assert mount in services["prometheus"]["volumes"]


# --------------------------------------------------------------------------- grafana


def test_dashboard_parses_with_unique_panel_ids() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    ids = [panel["id"] for panel in PANELS]
    assert len(ids) == len(set(ids))
    for panel in PANELS:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize(("title", "expr"), DASHBOARD_EXPRS, ids=[t for t, _ in DASHBOARD_EXPRS])
def test_dashboard_queries_use_only_known_metrics(title: str, expr: str) -> None:
    assert not _promql.unknown_series(expr), title
    assert not _promql.check(expr), (title, expr)


def test_dashboard_has_a_panel_for_every_metric() -> None:
    shown = set()
    for _title, expr in DASHBOARD_EXPRS:
        shown |= _promql.metrics(expr)
    assert shown == set(METRICS), f"no panel for {set(METRICS) - shown}"


def test_dashboard_and_datasource_provisioning_agree() -> None:
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    uids = {ds["uid"] for ds in datasources["datasources"]}
    variable = next(v for v in DASHBOARD["templating"]["list"] if v["type"] == "datasource")
    assert variable["current"]["value"] in uids
    for panel in PANELS:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] in uids | {"${datasource}"}, panel["title"]
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "notifier.yml")
    path = providers["providers"][0]["options"]["path"]
    volumes = compose()["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in volumes
    assert os.path.isdir(GRAFANA / "dashboards")
