"""Inbound SMS (Twilio's incoming-message webhook): STOP suppresses the number, START restores it.

The request is verified first with Twilio's signature (``X-Twilio-Signature``, the SDK's
``RequestValidator`` keyed by ``NOTIFIER_TWILIO_AUTH_TOKEN``) over the URL Twilio called, which
is rebuilt from ``NOTIFIER_PUBLIC_URL`` (behind a proxy the app's own view of scheme and host is
not what Twilio signed). An unsigned or wrongly signed request is refused with 403 and changes
nothing. The answer is an empty TwiML response: Twilio's own opt-out handling sends the reply.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from notifier.api.deps import RuntimeDep
from notifier.campaigns.optout import opt_in, opt_out
from notifier.db.session import transaction
from notifier.errors import ErrorCode, NotifierError
from notifier.recipients import normalise_phone
from providers.interface import Channel, SuppressionReason
from providers.sms.twilio_webhooks import SmsKeyword, parse_inbound, verify_signature

router = APIRouter(prefix="/v1/inbound", tags=["inbound"])
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@router.post("/twilio/sms")
async def twilio_inbound_sms(
    request: Request,
    runtime: RuntimeDep,
    x_twilio_signature: Annotated[str | None, Header()] = None,
) -> Response:
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    url = runtime.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    token = runtime.settings.twilio_auth_token or ""
    if not verify_signature(url, params, x_twilio_signature or "", token):
        raise NotifierError(ErrorCode.INVALID_SIGNATURE, "the Twilio signature does not verify")
    try:
        inbound = parse_inbound(params)
        number = normalise_phone(inbound.from_number)
    except (ValueError, NotifierError) as e:
        raise NotifierError(ErrorCode.VALIDATION_ERROR, f"not an inbound SMS: {e}") from e
    if inbound.keyword in (SmsKeyword.STOP, SmsKeyword.START):
        with transaction(runtime.sessions) as session:
            if inbound.keyword == SmsKeyword.STOP:
                opt_out(session, Channel.SMS, number, SuppressionReason.STOP, "STOP received")
            else:
                opt_in(session, Channel.SMS, number, SuppressionReason.STOP, "START")
    return Response(EMPTY_TWIML, media_type="application/xml")
