"""Provider receipts (Twilio status callbacks, SES events via SNS) — issue 3."""

from fastapi import APIRouter

router = APIRouter()
