"""Receipt processing on the ``receipts`` queue: the ``notifier.receipts.apply`` task.

The task takes receipts as JSON payloads (:mod:`notifier.receipts.schemas`), applies them in one
transaction (:func:`notifier.receipts.service.apply_receipts`), and re-publishes the ones that
matched no notification a few times with a growing delay (:data:`LATE_RECEIPT_DELAYS`): a
provider may call back before the worker that sent the message has recorded its message id.
After the last try an unknown receipt is dropped (logged ``receipt.dropped``). Applying is
idempotent, so the broker delivering the task twice does no harm beyond a second timeline entry.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from notifier.receipts.schemas import receipt_from_payload, receipt_to_payload
from notifier.receipts.service import apply_receipts
from notifier.tasks import RECEIPTS, RECEIPTS_APPLY, enqueue
from providers.interface import ConfigurationError
from workers.task_policy import TASK_OPTIONS

log = logging.getLogger("notifier.receipts")

LATE_RECEIPT_DELAYS: tuple[float, ...] = (5.0, 30.0, 120.0)


def register(app: Celery) -> None:
    """Register the receipt tasks on ``app``."""

    delivery = app.delivery

    # shared=False: a shared task would be attached to every Celery app created later in the
    # process, bound to this app's delivery context (tests build many apps).
    @app.task(name=RECEIPTS_APPLY, queue=RECEIPTS, **TASK_OPTIONS)
    def apply(payloads: list[dict[str, Any]], late_tries: int = 0) -> dict[str, int]:
        receipts = []
        for payload in payloads:
            try:
                receipts.append(receipt_from_payload(payload))
            except (KeyError, TypeError, ValueError):
                log.warning("receipt.malformed_payload")
        applied = apply_receipts(delivery.runtime.sessions, receipts, provider_kinds(delivery))
        if applied.unknown:
            if late_tries < len(LATE_RECEIPT_DELAYS):
                enqueue(
                    app,
                    RECEIPTS_APPLY,
                    [[receipt_to_payload(r) for r in applied.unknown], late_tries + 1],
                    RECEIPTS,
                    countdown=LATE_RECEIPT_DELAYS[late_tries],
                )
            else:
                for receipt in applied.unknown:
                    log.info(
                        "receipt.dropped",
                        extra={
                            "provider": receipt.provider,
                            "provider_message_id": receipt.provider_message_id,
                        },
                    )
        return {
            "recorded": applied.recorded,
            "moved": len(applied.moved),
            "suppressed": len(applied.suppressed),
            "unknown": len(applied.unknown),
        }


def provider_kinds(delivery: Any) -> dict[str, str]:
    """Configured provider name -> kind, from the providers file this worker delivers with."""
    try:
        specs = delivery.specs
    except ConfigurationError:
        log.warning("receipt.providers_unreadable")
        return {}
    return {spec.name: spec.kind for chain in specs.values() for spec in chain}
