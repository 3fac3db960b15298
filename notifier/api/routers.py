"""Every router the application serves, in one list."""

from __future__ import annotations

from fastapi import APIRouter

from notifier.api import health, unsubscribe
from notifier.api.v1 import (
    campaigns,
    cancel,
    erasures,
    inbound,
    keys,
    notifications,
    operator_listings,
    receipts,
    services,
    support,
    suppressions,
)
from notifier.support import routes as console


def all_routers() -> list[APIRouter]:
    return [
        health.router,
        notifications.router,
        cancel.router,
        receipts.router,
        support.router,
        suppressions.router,
        keys.router,
        services.router,
        erasures.router,
        campaigns.router,
        operator_listings.router,
        inbound.router,
        unsubscribe.router,
        console.router,
    ]
