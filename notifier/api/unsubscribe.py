"""Public unsubscribe pages /u/{token} — issue 6."""

from fastapi import APIRouter

router = APIRouter()
