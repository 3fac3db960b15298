"""Inbound SMS (Twilio STOP/START webhook) — issue 6."""

from fastapi import APIRouter

router = APIRouter()
