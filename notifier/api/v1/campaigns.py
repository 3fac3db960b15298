"""Templates, contacts, audiences and campaigns (scope campaigns:manage) — issue 6."""

from fastapi import APIRouter

router = APIRouter()
