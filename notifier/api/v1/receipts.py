"""Provider receipts: Twilio status callbacks and SES events via SNS.

Both endpoints verify the provider's signature before reading anything (a forged or unsigned
request gets 403 ``invalid_signature`` and changes nothing), put the receipts on the
``receipts`` queue and answer 202 at once; the ``notifier.receipts.apply`` task applies them.
See :mod:`notifier.receipts.inbound` for how the signatures are checked and what a deployment
behind a proxy must configure (``NOTIFIER_PUBLIC_URL``).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from notifier.api.deps import RuntimeDep
from notifier.receipts.inbound import (
    publish_receipts,
    ses_receipts,
    signed_url,
    sns_message,
    twilio_receipt,
)

router = APIRouter(prefix="/v1/receipts", tags=["receipts"])


class ReceiptsAccepted(BaseModel):
    accepted: int


@router.post("/twilio", status_code=202, response_model=ReceiptsAccepted)
async def twilio_status_callback(
    request: Request,
    runtime: RuntimeDep,
    x_twilio_signature: Annotated[str | None, Header()] = None,
) -> ReceiptsAccepted:
    params = dict(
        parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    )
    url = signed_url(runtime.settings.public_url, request.url.path, request.url.query)
    receipt = twilio_receipt(runtime.settings, url, params, x_twilio_signature)
    await run_in_threadpool(publish_receipts, runtime.celery, [receipt])
    return ReceiptsAccepted(accepted=1)


@router.post("/ses", status_code=202, response_model=ReceiptsAccepted)
async def ses_notification(request: Request, runtime: RuntimeDep) -> ReceiptsAccepted:
    message = sns_message(await request.body())
    receipts = await run_in_threadpool(ses_receipts, runtime.settings, message)
    await run_in_threadpool(publish_receipts, runtime.celery, receipts)
    return ReceiptsAccepted(accepted=len(receipts))
