"""Prometheus metrics: one definition of every series, used by the API and the workers.

The names are the contract with ``deploy/prometheus/alerts.yml`` and the Grafana dashboard
(``tests/deploy`` checks them). The API serves ``/metrics``; each worker and beat process serves
its own on ``NOTIFIER_METRICS_PORT``. With several API processes (``--workers N``) set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory: ``/metrics`` then aggregates all of them.
Queue depth, beat's last tick and delivery health (``notifier.delivery_health``: due notifications
and the age of the oldest per lane, live workers per queue) are read when scraped, from the broker
and the database.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

if TYPE_CHECKING:  # both import this module
    from notifier.delivery_health import DeliveryHealth
    from notifier.runtime import Runtime

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TIME_TO_SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)

HTTP_REQUESTS = Counter(
    "notifier_http_requests_total",
    "Intake requests by route and status",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "notifier_http_request_duration_seconds",
    "Intake request duration",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
ACCEPTED = Counter(
    "notifier_notifications_accepted_total", "Notifications accepted by lane", ["lane"]
)
TEST_ACCEPTED = Counter(
    "notifier_test_notifications_accepted_total",
    "Notifications accepted with a test key by lane (also counted as accepted)",
    ["lane"],
)
SENDS = Counter(
    "notifier_sends_total", "Provider attempts by outcome", ["provider", "lane", "outcome"]
)
PROVIDER_LATENCY = Histogram(
    "notifier_provider_latency_seconds",
    "Provider call latency",
    ["provider", "lane"],
    buckets=LATENCY_BUCKETS,
)
TIME_TO_SEND = Histogram(
    "notifier_time_to_send_seconds",
    "From accepted to provider accepted",
    ["lane"],
    buckets=TIME_TO_SEND_BUCKETS,
)
RETRIES = Counter("notifier_retries_total", "Retries scheduled", ["lane"])
SUPPRESSIONS = Counter("notifier_suppressions_total", "Suppressions created", ["channel", "reason"])
RATE_LIMIT_FALLBACKS = Counter(
    "notifier_rate_limit_fallbacks_total",
    "Rate-limit decisions taken in process memory because Redis was unreachable",
)
CIRCUIT_STATE = Gauge(
    "notifier_circuit_state",
    "Circuit breaker: 0 closed, 1 half-open, 2 open",
    ["provider", "lane"],
    multiprocess_mode="max",
)
ACCOUNT_REFUSALS = Counter(
    "notifier_provider_account_refusals_total",
    "A provider refused our account (credentials, certificate, account paused)",
    ["provider", "lane"],
)
THROTTLE_WAIT = Counter(
    "notifier_provider_rate_wait_seconds_total",
    "Seconds sends waited for a provider's shared send rate",
    ["provider", "lane"],
)
RECORD_RETRIES = Counter(
    "notifier_record_retries_total",
    "Writes of delivery results retried because the database was away",
)
RECORD_ABANDONED = Counter(
    "notifier_record_abandoned_total",
    "Delivery results that could not be written within the retry bound",
)
RECOVERED = Counter(
    "notifier_recovered_total",
    "Notifications recovered from a worker that stopped mid-send, by what followed",
    ["lane", "outcome"],
)
UNCONFIRMED = Counter(
    "notifier_unconfirmed_total",
    "Notifications ended unconfirmed: the provider may have accepted them",
    ["lane"],
)


def outcome_of(error: object | None) -> str:
    """The ``outcome`` label of an attempt, from its typed error (None: sent)."""
    if error is None:
        return "sent"
    from providers.interface import (
        InvalidRecipientError,
        PermanentError,
        ProviderAccountError,
        ProviderUnavailableError,
        ThrottledError,
    )

    if isinstance(error, ThrottledError):
        return "throttled"
    if isinstance(error, ProviderAccountError):
        return "account_refused"
    if isinstance(error, ProviderUnavailableError):
        return "unavailable"
    if isinstance(error, InvalidRecipientError):
        return "invalid_recipient"
    if isinstance(error, PermanentError):
        return "permanent"
    return "transient"


class DeploymentCollector(Collector):
    """Queue depth, beat's last tick and delivery health, read at scrape time (cached a few
    seconds)."""

    def __init__(self, runtime: Runtime, ttl: float = 5.0) -> None:
        self.runtime = runtime
        self.ttl = ttl
        self._cached: tuple[float, list[GaugeMetricFamily]] = (0.0, [])

    def collect(self) -> Iterable[GaugeMetricFamily]:
        now = time.monotonic()
        if now - self._cached[0] > self.ttl:
            self._cached = (now, self._read())
        yield from self._cached[1]

    def _read(self) -> list[GaugeMetricFamily]:
        from notifier.operations import collect_status

        rt = self.runtime  # the API's own pool and broker connections, not new ones per scrape
        report = collect_status(rt.settings, engine=rt.engine, celery=rt.celery)
        depth = GaugeMetricFamily(
            "notifier_queue_depth", "Messages waiting per queue", labels=["queue"]
        )
        for queue, value in report.queue_depths.items():
            if value is not None:
                depth.add_metric([queue], value)
        families = [depth]
        if report.beat_last_tick is not None:
            tick = GaugeMetricFamily(
                "notifier_beat_last_tick_timestamp_seconds", "Last sweeper run (beat ticks)"
            )
            tick.add_metric([], report.beat_last_tick.timestamp())
            families.append(tick)
        if report.delivery is not None:
            families.extend(_delivery_families(report.delivery))
        if report.partition_default_rows:
            families.append(
                _per_label(
                    "notifier_partition_default_rows",
                    "Rows in a default time partition (up to 100,000): partitions not made ahead",
                    "table",
                    report.partition_default_rows,
                )
            )
        return families


def _per_label(
    name: str, documentation: str, label: str, values: dict[str, int]
) -> GaugeMetricFamily:
    """A gauge with one series per key of ``values`` (sorted), labelled ``label``."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _delivery_families(health: DeliveryHealth) -> list[GaugeMetricFamily]:
    """Every queue gets a live-worker count (0 included, so "== 0" alerts can fire); every lane
    its due count and oldest due age (0 when nothing is due)."""
    from providers.interface import Lane

    live = _per_label(
        "notifier_live_workers",
        "Worker processes with a fresh heartbeat, per queue",
        "queue",
        health.live_workers,
    )
    due = GaugeMetricFamily(
        "notifier_due_notifications", "Queued notifications due now, per lane", labels=["queue"]
    )
    age = GaugeMetricFamily(
        "notifier_oldest_due_age_seconds",
        "How long the oldest due notification has waited",
        labels=["queue"],
    )
    for lane in Lane:
        backlog = health.backlog.get(lane.queue)
        due.add_metric([lane.queue], backlog.due if backlog else 0)
        age.add_metric([lane.queue], backlog.oldest_due_age_seconds if backlog else 0.0)
    return [live, due, age]


def registry() -> CollectorRegistry:
    """The registry to expose: the process's own, or every process's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        aggregated = CollectorRegistry()
        multiprocess.MultiProcessCollector(aggregated)
        return aggregated
    return REGISTRY


def exposition(extra: Collector | None = None) -> bytes:
    reg = registry()
    output = generate_latest(reg)
    if extra is not None:
        own = CollectorRegistry()
        own.register(extra)
        output += generate_latest(own)
    return output


def serve(port: int) -> None:
    """Serve this process's metrics on ``port`` (workers and beat)."""
    from prometheus_client import start_http_server

    start_http_server(port, registry=registry())
