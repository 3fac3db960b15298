"""What a request knows about its caller's service: a frozen copy of the service's row, read
in the same query as the key and cached with it (so no request pays a round trip for it).

Per-lane mappings are keyed by lane value; a lane a service does not mention falls back to the
platform's setting (its senders, its chain, the key's rate limit, no daily quota).

The allow-list travels as its recipients' fingerprints (``notifier.suppressions.fingerprint``),
so intake checks a team key's recipient against memory, not the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from notifier.services.models import DEFAULT_SERVICE_ID, DEFAULT_SERVICE_NAME, Service
from providers.interface import Lane

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, eq=False)  # identity equality and hash: the mappings are unhashable
class ServiceSnapshot:
    id: str
    name: str
    trial: bool = False
    senders: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: _EMPTY)
    provider_chains: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY)
    rate_limits: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    daily_quotas: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    retention_days: int | None = None
    has_callback: bool = False
    allowed: frozenset[str] = frozenset()  # fingerprints of the allow-list's recipients

    @classmethod
    def of(cls, row: Service, allowed: Iterable[str] = ()) -> ServiceSnapshot:
        return cls(
            id=row.id,
            name=row.name,
            trial=bool(row.trial),
            senders=MappingProxyType(
                {lane: MappingProxyType(dict(s)) for lane, s in (row.senders or {}).items()}
            ),
            provider_chains=MappingProxyType(
                {lane: tuple(names) for lane, names in (row.provider_chains or {}).items()}
            ),
            rate_limits=MappingProxyType(dict(row.rate_limits or {})),
            daily_quotas=MappingProxyType(
                {lane: int(n) for lane, n in (row.daily_quotas or {}).items()}
            ),
            retention_days=row.retention_days,
            has_callback=row.callback_url is not None,
            allowed=frozenset(allowed),
        )

    def allows(self, fingerprint: str) -> bool:
        """Whether the recipient with this fingerprint is on the allow-list."""
        return fingerprint in self.allowed

    def daily_quota(self, lane: Lane) -> int | None:
        return self.daily_quotas.get(lane.value)

    def sender(self, lane: Lane) -> Mapping[str, str]:
        """This service's sender identity on ``lane``; empty: the platform's provider options."""
        return self.senders.get(lane.value, _EMPTY)

    def chain(self, lane: Lane) -> tuple[str, ...] | None:
        """The provider names this service sends ``lane`` through; None: the platform's chain."""
        return self.provider_chains.get(lane.value)


DEFAULT_SERVICE = ServiceSnapshot(id=DEFAULT_SERVICE_ID, name=DEFAULT_SERVICE_NAME)
