"""Receipts arriving over HTTP: prove who sent them, turn them into receipts, queue them.

Nothing here trusts a request before its signature verified. A request that does not verify is
refused with :class:`NotifierError` ``invalid_signature`` (HTTP 403) and changes nothing.

Twilio status callbacks
    Twilio signs the full URL it requested plus the form parameters with the account's auth token
    (``X-Twilio-Signature``). We rebuild that URL from ``NOTIFIER_PUBLIC_URL`` and the request's
    path and query, never from the ``Host`` header, so behind a TLS-terminating proxy or load
    balancer the signature still matches the URL Twilio called: set ``NOTIFIER_PUBLIC_URL`` to the
    exact scheme, host and port Twilio uses (``https://notify.example.com``), keep the path
    unchanged through the proxy, and configure the Twilio provider's ``status_callback_url`` as
    ``<NOTIFIER_PUBLIC_URL>/v1/receipts/twilio``.

SES events via SNS
    The SNS message's signature is checked with :func:`verify_sns_message` against a certificate
    downloaded over https from a host matching ``NOTIFIER_SNS_CERTIFICATE_HOST_PATTERN`` (AWS's
    SNS hosts by default); with ``NOTIFIER_SES_TOPIC_ARNS`` set, only those topics are accepted.
    In production the list is required: without it every SNS message is refused (a valid
    signature only proves that *some* AWS account's topic sent it, and anyone can create a
    topic, subscribe this endpoint and publish fake bounces). The service still starts, because
    a deployment without SES has no topic to name; in dev and test an empty list accepts any
    topic whose signature verifies.
    A ``SubscriptionConfirmation`` is confirmed by GETting its ``SubscribeURL`` (same host rule)
    only after the signature verified; an ``UnsubscribeConfirmation`` is acknowledged and logged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from celery import Celery

from notifier.config import Environment, Settings
from notifier.errors import ErrorCode, NotifierError
from notifier.receipts.certificates import HttpsFetcher
from notifier.receipts.schemas import receipt_to_payload
from notifier.tasks import RECEIPTS, RECEIPTS_APPLY, enqueue
from providers.email.ses_events import (
    SesEventError,
    SnsSignatureError,
    parse_ses_event,
    subscription_confirmation_url,
    verify_sns_message,
)
from providers.interface import Receipt
from providers.sms.twilio_webhooks import parse_status_callback, verify_signature

log = logging.getLogger("notifier.receipts")


def refused(reason: str) -> NotifierError:
    return NotifierError(ErrorCode.INVALID_SIGNATURE, reason)


# --------------------------------------------------------------------------- Twilio


def signed_url(public_url: str, path: str, query: str) -> str:
    """The URL Twilio requested, as it signed it: the public base URL, the path, the query."""
    url = public_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def twilio_receipt(
    settings: Settings, url: str, params: Mapping[str, str], signature: str | None
) -> Receipt:
    if not settings.twilio_auth_token:
        log.warning("receipt.twilio.unconfigured")
        raise refused("Twilio receipts cannot be verified here")
    if not verify_signature(url, params, signature or "", settings.twilio_auth_token):
        log.warning("receipt.twilio.bad_signature", extra={"signed_present": bool(signature)})
        raise refused("X-Twilio-Signature does not match this request")
    try:
        return parse_status_callback(params)
    except ValueError as e:
        raise NotifierError(ErrorCode.VALIDATION_ERROR, str(e)) from e


# --------------------------------------------------------------------------- SES via SNS


@lru_cache(maxsize=8)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def sns_message(body: bytes) -> dict[str, Any]:
    """The JSON object SNS posted (SNS sends it as text/plain)."""
    try:
        message = json.loads(body)
    except ValueError as e:
        raise NotifierError(ErrorCode.MALFORMED_JSON, "request body is not valid JSON") from e
    if not isinstance(message, dict):
        raise refused("not an SNS message")
    return message


def ses_receipts(
    settings: Settings,
    message: Mapping[str, Any],
    fetch: Callable[[str], bytes] | None = None,
) -> list[Receipt]:
    """Verify an SNS message, confirm a subscription, and return the SES receipts it carries."""
    fetcher = fetch or HttpsFetcher()
    allowed_host = _pattern(settings.sns_certificate_host_pattern)
    topic = message.get("TopicArn")
    if not settings.ses_topic_arns and settings.env == Environment.PRODUCTION:
        log.error("receipt.sns.no_topics_configured", extra={"topic_arn": str(topic)[:256]})
        raise refused(
            "NOTIFIER_SES_TOPIC_ARNS is not set: in production no SNS topic is accepted until "
            "the allowed topics are listed"
        )
    if settings.ses_topic_arns and topic not in settings.ses_topic_arns:
        log.warning("receipt.sns.topic_refused", extra={"topic_arn": str(topic)[:256]})
        raise refused("this SNS topic is not accepted here")
    try:
        verify_sns_message(message, fetcher, allowed_host)
        confirm_url = subscription_confirmation_url(message, allowed_host)
    except SnsSignatureError as e:
        log.warning("receipt.sns.bad_signature", extra={"reason": str(e)})
        raise refused(f"SNS signature refused: {e}") from e
    if confirm_url is not None:
        _confirm(fetcher, confirm_url, str(topic))
        return []
    if message.get("Type") == "UnsubscribeConfirmation":
        log.warning("receipt.sns.unsubscribed", extra={"topic_arn": str(topic)})
        return []
    try:
        return parse_ses_event(message)
    except SesEventError as e:
        raise NotifierError(ErrorCode.VALIDATION_ERROR, f"unreadable SES event: {e}") from e


def _confirm(fetcher: Callable[[str], bytes], url: str, topic: str) -> None:
    try:
        fetcher(url)
    except Exception as e:  # whatever the HTTP client raises: SNS retries the confirmation
        log.warning("receipt.sns.confirmation_failed", extra={"topic_arn": topic})
        raise NotifierError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "could not confirm the SNS subscription; retry later",
            retry_after=30,
        ) from e
    log.info("receipt.sns.subscription_confirmed", extra={"topic_arn": topic})


# --------------------------------------------------------------------------- queueing


def publish_receipts(celery: Celery, receipts: Sequence[Receipt]) -> None:
    """Put the receipts on the ``receipts`` queue; a broker failure is the provider's cue to
    retry (HTTP 503), since nothing else holds the receipt."""
    if not receipts:
        return
    try:
        enqueue(celery, RECEIPTS_APPLY, [[receipt_to_payload(r) for r in receipts]], RECEIPTS)
    except Exception as e:  # any broker failure
        log.warning("receipt.publish_failed", extra={"error": type(e).__name__})
        raise NotifierError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "receipts cannot be queued now; retry later",
            retry_after=5,
        ) from e
