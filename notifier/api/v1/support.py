"""Support search through the API for keys with support:read — issue 5."""

from fastapi import APIRouter

router = APIRouter()
