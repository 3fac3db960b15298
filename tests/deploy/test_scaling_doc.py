"""deploy/SCALING.md and the Kubernetes README cover what operators need, with sourced figures."""

from __future__ import annotations

from ._files import DEPLOY, KUBERNETES

SCALING = (DEPLOY / "SCALING.md").read_text()


def test_figures_come_from_the_benchmarks_with_date_and_command() -> None:
    assert "bench/README.md" in SCALING and "2026-12-02" in SCALING
    for command in ("python -m bench.intake", "python -m bench.e2e", "python -m bench.chaos"):
        assert command in SCALING, command
    for figure in ("3,051 and 2,519 req/s", "8,650 notifications/s", "worker 0.610\u20130.785 ms"):
        assert figure in SCALING, figure


def test_the_50_million_estimate_states_its_rates_and_peak_factor() -> None:
    assert "50,000,000 / 86,400" in SCALING
    assert "~580/s" in SCALING  # 50e6 / 86,400 = 578.7
    assert "Peak factor 3" in SCALING and "~1,740/s" in SCALING


def test_covers_the_stateful_choices() -> None:
    for topic in (
        "quorum queues",
        "PgBouncer",
        "read replica",
        "delivery_events",
        "Daily partitioning",
    ):
        assert topic in SCALING, topic


def test_kubernetes_readme_explains_scaling_without_keda() -> None:
    readme = (KUBERNETES / "README.md").read_text()
    assert "prometheus-adapter" in readme and "notifier_queue_depth" in readme
    assert "kubectl -n notifier scale" in readme
