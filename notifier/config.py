"""Settings: one pydantic-settings class, every variable prefixed ``NOTIFIER_``.

Every secret setting also accepts a ``*_FILE`` variant (``NOTIFIER_SECRET_KEY_FILE=/run/secrets/x``)
so containers can mount secrets as files. Outside ``dev`` the validator refuses the built-in
development secret.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any

from phonenumbers import SUPPORTED_REGIONS
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from notifier.db.partitions import Layout
from notifier.db.session import DatabasePooler
from notifier.home import discover_data_dir
from notifier.recipients import DEFAULT_SEARCH_REGIONS
from notifier.redaction import is_secret

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - the public dev default, refused outside dev mode
SECRET_FIELDS = (
    "secret_key",
    "database_url",
    "broker_url",
    "redis_url",
    "sentry_dsn",
    "twilio_auth_token",
)


class Environment(enum.StrEnum):
    DEV = "dev"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    env: Environment = Environment.DEV
    data_dir: Path = Field(default_factory=discover_data_dir)  # see notifier/home.py
    database_url: str = ""  # default: SQLite file in data_dir
    # `pgbouncer` when database_url is a PgBouncer in transaction pooling mode: no server-side
    # prepared statements (notifier/db/session.py; README "Connection budget"); SQLite ignores it
    database_pooler: DatabasePooler = DatabasePooler.NONE
    broker_url: str = "memory://"
    redis_url: str | None = None  # rate limits; in-memory when unset
    secret_key: str = DEV_SECRET_KEY
    providers_file: Path | None = None  # default: the outbox provider on every lane
    public_url: str = "http://127.0.0.1:8000"

    host: str = "127.0.0.1"
    port: int = 8000
    # reverse proxies whose X-Forwarded-For/-Proto are believed (comma-separated addresses or
    # networks); see notifier/api/serving.py
    trusted_proxies: str = "127.0.0.1"
    # how long uvicorn's supervisor waits for an API worker process to answer its health ping
    # (and, at start, to be ready) before killing it: a process still importing the app on a
    # busy machine must not be killed and restarted in a loop (uvicorn's own default is 5 s)
    api_worker_healthcheck_seconds: int = Field(default=30, ge=1)

    # intake
    max_body_bytes: int = 1_048_576
    max_batch_bytes: int = 8 * 1_048_576
    max_import_bytes: int = 256 * 1_048_576  # a CSV import through the API, streamed
    max_batch_items: int = 1000
    sms_max_segments: int = 10
    email_max_body_chars: int = 500_000
    push_max_body_chars: int = 4000
    api_rate_limit: str = "3000/minute"  # per API key, `limits` notation
    sms_recipient_rate_limit: str = "5/10minutes"  # transactional SMS per phone number
    idempotency_retention_hours: int = 48
    # template rendering bounds (see notifier/rendering.py): non-plain templates render in worker
    # processes, killed at the deadline; a batch shares one rendering budget
    render_workers: int = 2
    render_timeout_seconds: float = 0.25
    render_memory_mb: int = 256
    batch_render_budget_seconds: float = 5.0
    batch_max_content_chars: int = 8 * 1_048_576  # rendered content stored by one batch
    send_at_past_tolerance_seconds: int = 60
    send_at_max_days: int = 90

    # database connections per process (a hard bound: PostgreSQL's max_connections is shared by
    # every process; see README "Connection budget"). Unset: 5 for an API process, and for a
    # worker process concurrency / 8 + 2, at most 10 (deliveries hold a connection only to claim
    # and to record, never across a provider call).
    db_pool_size: int | None = None
    db_max_overflow: int = 0

    # delivery
    worker_concurrency: int = 64
    max_attempts: int = 8
    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 600.0
    default_ttl_seconds: int = 72 * 3600
    provider_timeout_seconds: float = 30.0
    # a provider instance's circuit breaker: opens after this many provider-health failures in a
    # row (at once on an account-level refusal) and lets one trial through after the cool-down
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: float = 30.0
    # how long a worker holds delivery results and retries writing them while the database is away
    record_retry_seconds: float = 600.0
    # lanes whose messages are sent again (same provider, same identity) when their worker died
    # between contacting the provider and recording its answer; on other lanes such a message
    # ends `unconfirmed` (a login code may rather arrive twice than never; a marketing email not)
    resend_after_crash_lanes: list[str] = [
        "email.transactional",
        "sms.transactional",
        "push.transactional",
    ]

    # safety nets
    sweep_interval_seconds: float = 5.0  # scheduled sends go out within this of their time
    queued_stale_seconds: float = 120.0
    sending_timeout_seconds: float = 300.0
    content_retention_days: int = 7  # rendered content, kept for support; then purged
    # the platform's retention of notifications and their events (workers/partition_upkeep.py): on
    # PostgreSQL whole time partitions (notifier/db/partitions.py) older than this are dropped,
    # on SQLite the rows are deleted in bounded batches. 90 days: support can answer "was it
    # sent?" for a quarter; longer keeps data the law asks us to minimise.
    notification_retention_days: int = Field(default=90, ge=1)
    # PostgreSQL partitions: each covers this many days (UTC) and they are made this far ahead
    partition_days: int = Field(default=1, ge=1)
    partition_ahead_days: int = Field(default=7, ge=1)

    # worker liveness (notifier/liveness.py): every worker process upserts its row in
    # worker_heartbeats this often; a worker not seen for worker_lapse_seconds counts as dead
    # (its claims are recovered, health stops counting it). The lapse must leave room for a few
    # missed beats: at least twice the heartbeat interval.
    worker_heartbeat_seconds: float = 5.0
    worker_lapse_seconds: float = 20.0

    # delivery health (notifier/delivery_health.py: GET /health/delivery, `notifier status`):
    # delivery counts as stopped when the oldest due queued notification of a lane waited longer
    # than this (promotional lanes: the second limit, campaigns keep long backlogs), or when the
    # sweeper (beat) has not run for health_beat_stale_seconds
    health_queued_age_seconds: float = 300.0
    health_promotional_queued_age_seconds: float = 6 * 3600.0
    health_beat_stale_seconds: float = 120.0

    # inbound webhooks (receipts, STOP/START): the Twilio auth token that signs them, and which SNS
    # topics may deliver SES events (empty: any topic whose message signature verifies)
    twilio_auth_token: str | None = None
    ses_topic_arns: list[str] = []  # required in production (else every SNS message is refused)
    sns_certificate_host_pattern: str = r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$"

    # support search: regions tried for a phone number typed in local format (JSON list of
    # ISO 3166 codes, e.g. '["AU","NZ"]'); see notifier.recipients.DEFAULT_SEARCH_REGIONS
    phone_search_regions: list[str] = list(DEFAULT_SEARCH_REGIONS)

    log_level: str = "INFO"
    log_format: str = "json"  # json | console
    metrics_port: int = 9100
    sentry_dsn: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        for name in cls.model_fields:  # the secret ones (notifier/redaction.py) read *_FILE too
            if not is_secret(name):
                continue
            path = os.environ.get(f"NOTIFIER_{name.upper()}_FILE")
            if path and not values.get(name):
                values[name] = Path(path).read_text().strip()
        return values

    @model_validator(mode="after")
    def _defaults_and_safety(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'notifier.db'}"
        if (
            self.worker_heartbeat_seconds <= 0
            or self.worker_lapse_seconds < 2 * self.worker_heartbeat_seconds
        ):
            raise ValueError(
                "NOTIFIER_WORKER_LAPSE_SECONDS must be at least twice "
                "NOTIFIER_WORKER_HEARTBEAT_SECONDS "
                "(and the heartbeat positive): one late beat must not make a live worker look dead"
            )
        if self.env == Environment.PRODUCTION and self.secret_key == DEV_SECRET_KEY:
            raise ValueError(
                "NOTIFIER_SECRET_KEY is the development default; set a real secret "
                "(or NOTIFIER_SECRET_KEY_FILE) outside dev"
            )
        unknown = [r for r in self.phone_search_regions if r not in SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"NOTIFIER_PHONE_SEARCH_REGIONS: unknown regions {unknown}")
        if self.env == Environment.PRODUCTION and "*" in self.trusted_proxy_list:
            raise ValueError(
                "NOTIFIER_TRUSTED_PROXIES='*' trusts X-Forwarded-For from anyone, so any client "
                "can choose its own address; name the reverse proxies' addresses in production"
            )
        if self.env == Environment.PRODUCTION and len(self.secret_key) < 32:
            raise ValueError("NOTIFIER_SECRET_KEY must be at least 32 characters in production")
        return self

    def pool_size_for(self, kind: str) -> int:
        """Connections a process of ``kind`` (``api``, ``worker``, ``beat``, ``cli``) keeps."""
        if self.db_pool_size is not None:
            return self.db_pool_size
        if kind == "worker":
            return min(10, self.worker_concurrency // 8 + 2)
        return {"api": 5, "beat": 2}.get(kind, 1)

    @property
    def partition_layout(self) -> Layout:
        return Layout(days=self.partition_days, ahead_days=self.partition_ahead_days)

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
