"""Services, keys and SMTP-backed delivery contexts for the services tests."""

from __future__ import annotations

from typing import Any

from notifier import keys as key_store
from notifier.db.session import transaction
from notifier.keys import KeyType
from notifier.provider_config import ProviderSpec
from notifier.runtime import Runtime
from notifier.services.models import Service
from providers.interface import Lane
from tests.fakes.smtp_server import FakeSmtpServer
from workers.context import DeliveryContext

PLATFORM_SENDER = "platform@notifier.example"


def service(runtime: Runtime, name: str, **values: Any) -> str:
    with transaction(runtime.sessions) as s:
        settings: dict[str, dict[str, object]] = {
            "senders": {},
            "provider_chains": {},
            "rate_limits": {},
            "daily_quotas": {},
        }
        row = Service(name=name, **{"trial": False, **settings, **values})
        s.add(row)
        s.flush()
        return row.id


def bearer(runtime: Runtime, service_id: str, key_type: KeyType = KeyType.LIVE) -> dict[str, str]:
    with transaction(runtime.sessions) as s:
        _, plaintext = key_store.create_key(
            s,
            f"{key_type}-key",
            ["notifications:send", "notifications:read"],
            None,
            None,
            service_id,
            key_type,
        )
    return {"Authorization": f"Bearer {plaintext}"}


def smtp_spec(name: str, server: FakeSmtpServer) -> ProviderSpec:
    options = {"host": server.host, "port": server.port, "tls": "none"}
    return ProviderSpec(name, "smtp", {**options, "from_address": PLATFORM_SENDER})


def smtp_context(runtime: Runtime, *servers: tuple[str, FakeSmtpServer]) -> DeliveryContext:
    """Workers whose email.transactional chain is these SMTP fakes, in order."""
    chain = [smtp_spec(name, server) for name, server in servers]
    return DeliveryContext(runtime, chains={Lane.EMAIL_TRANSACTIONAL: chain})
