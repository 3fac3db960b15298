"""deploy/SCALING.md and the Kubernetes README cover what operators need, with sourced figures."""

from __future__ import annotations

from ._files import DEPLOY, KUBERNETES

SCALING = (DEPLOY / "SCALING.md").read_text()


def test_figures_are_sourced_and_marked_as_placeholders() -> None:
    assert "FACTS.md" in SCALING and "bench/README.md" in SCALING
    assert "placeholder" in SCALING.lower()
    for figure in ("1,200 req/s", "800 notifications/s", "3,500 publishes/s"):
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
        "Monthly partitioning",
    ):
        assert topic in SCALING, topic


def test_kubernetes_readme_explains_scaling_without_keda() -> None:
    readme = (KUBERNETES / "README.md").read_text()
    assert "prometheus-adapter" in readme and "notifier_queue_depth" in readme
    assert "kubectl -n notifier scale" in readme
