"""Receipts as they travel on the ``receipts`` queue: plain JSON objects, one per receipt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from providers.interface import Receipt, ReceiptOutcome


def receipt_to_payload(receipt: Receipt) -> dict[str, Any]:
    return {
        "provider": receipt.provider,
        "provider_message_id": receipt.provider_message_id,
        "outcome": receipt.outcome.value,
        "code": receipt.code,
        "description": receipt.description,
        "recipient": receipt.recipient,
        "occurred_at": receipt.occurred_at.isoformat() if receipt.occurred_at else None,
        "raw_status": receipt.raw_status,
    }


def receipt_from_payload(payload: dict[str, Any]) -> Receipt:
    """The receipt a payload stands for; ``ValueError`` (or ``KeyError``) when it is not one."""
    occurred_at = payload.get("occurred_at")
    return Receipt(
        provider=str(payload["provider"]),
        provider_message_id=str(payload["provider_message_id"]),
        outcome=ReceiptOutcome(payload["outcome"]),
        code=payload.get("code"),
        description=payload.get("description"),
        recipient=payload.get("recipient"),
        occurred_at=datetime.fromisoformat(occurred_at) if occurred_at else None,
        raw_status=payload.get("raw_status"),
    )
