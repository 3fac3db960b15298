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

The services of a claimed group are read in one query per task (not per message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.db.models import Notification
from notifier.services.models import Service
from notifier.services.snapshot import ServiceSnapshot
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


def services_of(session: Session, rows: Sequence[Notification]) -> dict[str, ServiceSnapshot]:
    """Each row's service by notification id, in one query (every row carries its service
    since migration 0015; rows of a service with no settings send as the platform does)."""
    wanted = {r.id: r.service_id for r in rows}
    found = {
        s.id: ServiceSnapshot.of(s)
        for s in session.scalars(select(Service).where(Service.id.in_(set(wanted.values()))))
    }
    return {nid: found[sid] for nid, sid in wanted.items() if sid in found}
