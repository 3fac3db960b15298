"""The support console's pages under /support — issue 5."""

from fastapi import APIRouter

router = APIRouter()
