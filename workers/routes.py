"""Which providers a notification goes through: the simulator, its service's chain, or the
platform's.

* A test key's notification, and any notification to one of the simulator's addresses or
  numbers (``providers.outbox``), goes to the lane's outbox provider when its chain has one
  (the embedded default), else to the simulator (an outbox provider named ``simulator``),
  whatever else the chain holds: a test never reaches a real provider, and the simulator's
  outcomes are the same under every key type.
* Otherwise a service with its own chain on the lane sends through those of the lane's
  platform providers, in its order; a chain naming none of them that is still configured
  falls back to the platform's chain (the platform's configuration may have changed since).

The services of a claimed group are read in one query per task (not per message) and kept for
``CACHE_SECONDS`` by the worker's delivery context (:mod:`notifier.ttl_cache`, the cache the
API keeps its keys in): a busy service's tasks read it once every few seconds, not once per
task, and a change to a service reaches the workers within that time, as it reaches the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.db.models import Notification
from notifier.keys import CACHE_SECONDS
from notifier.services.models import Service
from notifier.services.snapshot import ServiceSnapshot
from notifier.ttl_cache import TTLCache
from providers.interface import Lane
from providers.outbox import simulated_outcome

SIMULATOR = "simulator"


@dataclass(frozen=True)
class Route:
    simulate: bool = False
    chain: tuple[str, ...] | None = None  # the service's provider names; None: the platform's


PLATFORM = Route()


def route_of(row: Notification, service: ServiceSnapshot | None) -> Route:
    if row.test or simulated_outcome(row.recipient) is not None:
        return Route(simulate=True)
    chain = service.chain(Lane(row.lane)) if service is not None else None
    return Route(chain=chain) if chain else PLATFORM


class ServiceCache:
    """Snapshots of services by id, for a few seconds."""

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.services: TTLCache[str, ServiceSnapshot] = TTLCache(seconds)


def services_of(
    session: Session, rows: Sequence[Notification], cache: ServiceCache
) -> dict[str, ServiceSnapshot]:
    """Each row's service by notification id (every row carries its service since migration
    0015); a query only for the services ``cache`` lacks."""
    wanted = {r.id: r.service_id for r in rows}
    ids = set(wanted.values())
    found = {i: s for i in ids if (s := cache.services.get(i)) is not None}
    if missing := ids - found.keys():
        for row in session.scalars(select(Service).where(Service.id.in_(missing))):
            found[row.id] = cache.services.put(row.id, ServiceSnapshot.of(row))
    return {nid: found[sid] for nid, sid in wanted.items() if sid in found}
