"""Intake: the rules between an authenticated request and a persisted, published notification.

Order: lane allowed for the key, recipient valid and normalised and allowed for the key (team
keys and trial mode: :mod:`notifier.services.trial`), content rendered (a missing value is the
caller's 4xx now), per-recipient limits, the service's daily quota (counted last, so a refused
request costs none), suppressions, then the notification and its first event in one
transaction, then publish after commit. Nothing is stored for a rejected request. A test key's
notification is marked ``test`` on its row and handled exactly like live; the workers deliver
it to the simulator only.

:meth:`Intake.submit` is the one entry for a single notification and chooses its path (an
Idempotency-Key's replay or direct write, inline or pooled rendering, the group commit);
:meth:`Intake.submit_batch` is the batch's. The routers only speak HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

import anyio.to_thread
from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from notifier import metrics, reasons
from notifier.config import Settings
from notifier.content import templates
from notifier.content.quiet_hours import quiet_hours_deferral
from notifier.content.templates import ResolvedTemplate
from notifier.content.unsubscribe import UnsubscribeTokens, unsubscribe_link
from notifier.db.models import IdempotencyRecord, Notification, utcnow
from notifier.db.session import transaction
from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Caller
from notifier.notifications import bounds, repository
from notifier.notifications.group_commit import GroupCommitter
from notifier.notifications.request_content import render_request, sources
from notifier.notifications.rows import first_event, notification_row
from notifier.notifications.schemas import (
    EmailRequest,
    NotificationRequest,
    PushRequest,
    SmsRequest,
)
from notifier.publishing import Publishable, Publisher
from notifier.ratelimit import RateLimiter
from notifier.recipients import normalise
from notifier.render_pool import RenderPool
from notifier.rendering import Rendered, known_plain
from notifier.security import Sealer, request_fingerprint
from notifier.services.quotas import Counted, enforce_daily_quota, quota_needs_round_trip, refunding
from notifier.services.trial import require_allowed_recipient
from notifier.statuses import Status
from notifier.storable import require_storable
from notifier.suppressions import blocking_suppression
from providers.interface import Category, Channel, Lane

log = logging.getLogger("notifier.intake")

_request_adapter: TypeAdapter[Any] = TypeAdapter(NotificationRequest)


@dataclass
class Prepared:
    """A validated notification, ready to insert."""

    row: dict[str, Any]
    channel: Channel
    category: Category
    quota: Counted | None = None  # what it counted of the daily quota, refunded if not stored

    @property
    def id(self) -> str:
        value: str = self.row["id"]
        return value


@dataclass
class IntakeResult:
    """What intake answered for one notification: its row, or (batch items only) the error."""

    notification: Notification | None = None  # a replay: the row stored earlier
    replayed: bool = False
    error: NotifierError | None = None
    accepted: dict[str, Any] | None = None  # accepted now: the row as inserted


class Intake:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        publisher: Publisher,
        limiter: RateLimiter,
        sealer: Sealer,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.publisher = publisher
        self.limiter = limiter
        self.sealer = sealer

    # ------------------------------------------------------------------ single

    async def submit(
        self,
        caller: Caller,
        request: EmailRequest | SmsRequest | PushRequest,
        idempotency_key: str | None = None,
    ) -> IntakeResult:
        """Validation and plain rendering run on the event loop (microseconds, bounded); stored
        templates and non-plain ones are rendered from a worker thread (the render pool's
        deadline applies), so the loop is never held. The write joins the next group commit.
        Requests with an Idempotency-Key take the direct path (their uniqueness check needs
        it)."""
        if idempotency_key:
            require_storable(idempotency_key, "Idempotency-Key")
            fingerprint = self.fingerprint(request.model_dump(mode="json"))
            return await anyio.to_thread.run_sync(
                self._accept_keyed, caller, request, idempotency_key, fingerprint
            )
        if self.renders_inline(request, caller):
            prepared = self.prepare(caller, request)
        else:
            self.render_pool.check_share(caller.id)  # before a thread is taken for it
            prepared = await anyio.to_thread.run_sync(self.prepare, caller, request)
        # not stored: the quota refunded (a cancelled request may still be stored: kept);
        # nothing counted, nothing to guard
        guard = refunding(self.limiter, [prepared.quota]) if prepared.quota else nullcontext()
        with guard:
            await asyncio.wrap_future(self.committer.submit(prepared))
        return IntakeResult(accepted=prepared.row)

    def _accept_keyed(
        self,
        caller: Caller,
        request: EmailRequest | SmsRequest | PushRequest,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> IntakeResult:
        """A keyed request's direct path: the earlier answer for a key seen before, else the row
        and its idempotency record in one transaction, published after commit."""
        if idempotency_key:
            replay = self._replay(caller, idempotency_key, fingerprint)
            if replay is not None:
                return replay
        prepared = self.prepare(caller, request)
        try:
            with refunding(self.limiter, [prepared.quota]), transaction(self.sessions) as session:
                self._store(session, [prepared])
                if idempotency_key:
                    session.add(
                        IdempotencyRecord(
                            api_key_id=caller.id,
                            key=idempotency_key,
                            fingerprint=fingerprint or "",
                            notification_id=prepared.id,
                        )
                    )
                    session.flush()
        except IntegrityError:
            # a concurrent request with the same Idempotency-Key won the race: answer as it did
            replay = (
                self._replay(caller, idempotency_key or "", fingerprint)
                if idempotency_key
                else None
            )
            if replay is None:
                raise
            return replay
        self._publish([prepared])
        return IntakeResult(accepted=prepared.row)

    def _replay(self, caller: Caller, key: str, fingerprint: str | None) -> IntakeResult | None:
        with transaction(self.sessions) as session:
            record = repository.idempotency_record(session, caller.id, key)
            if record is None:
                return None
            if record.fingerprint != (fingerprint or ""):
                raise NotifierError(
                    ErrorCode.IDEMPOTENCY_KEY_REUSED,
                    "this Idempotency-Key was used with a different request body",
                )
            return IntakeResult(
                notification=repository.get(session, record.notification_id), replayed=True
            )

    # ------------------------------------------------------------------ batch

    def submit_batch(
        self, caller: Caller, items: Sequence[Any], idempotency_key: str | None = None
    ) -> list[IntakeResult]:
        from notifier.notifications.batch import accept_batch

        return accept_batch(self, caller, items, idempotency_key)

    # ------------------------------------------------------------------ rules

    def fingerprint(self, payload: Any) -> str:
        return request_fingerprint(payload, self.settings.secret_key)

    @cached_property
    def render_pool(self) -> RenderPool:
        return RenderPool(
            size=self.settings.render_workers,
            timeout=self.settings.render_timeout_seconds,
            memory_bytes=self.settings.render_memory_mb * 1024 * 1024,
        )

    def renders_inline(
        self, request: EmailRequest | SmsRequest | PushRequest, caller: Caller | None = None
    ) -> bool:
        """Whether :meth:`prepare` may run on the event loop: no stored template to read, and
        every source already compiled and plain (rendered in microseconds). Everything else,
        including the first sight of a source (compiling it can take milliseconds), takes a
        worker thread, and so does a transactional SMS while the per-number limit lives in Redis
        (its check is a round trip), and a lane with a daily quota when counting asks Redis."""
        if self.limiter.shared and (
            (request.channel == Channel.SMS.value and request.category == Category.TRANSACTIONAL)
            or (
                caller is not None
                and quota_needs_round_trip(
                    caller, Lane.of(Channel(request.channel), request.category), self.limiter
                )
            )
        ):
            return False
        return not request.template and known_plain(sources(request))

    def prepare(
        self,
        caller: Caller,
        request: EmailRequest | SmsRequest | PushRequest,
        render_timeout: float | None = None,
    ) -> Prepared:
        channel = Channel(request.channel)
        lane = Lane.of(channel, request.category)
        caller.require_lane(lane)
        platform = request.platform if isinstance(request, PushRequest) else None
        recipient = normalise(channel, request.to, platform)
        require_allowed_recipient(caller, channel, recipient)
        send_at = bounds.send_at(self.settings, request.send_at)
        template = self._template(request, caller) if request.template else None
        rendered = self._render(request, template, render_timeout, caller.id)
        if lane == Lane.EMAIL_PROMOTIONAL:
            unsubscribe_link(
                rendered, self._unsubscribe.url(Channel.EMAIL, recipient, caller.service.id)
            )
        segments = bounds.check_content(self.settings, channel, rendered.content)
        if lane == Lane.SMS_TRANSACTIONAL:
            verdict = self.limiter.hit(
                self.settings.sms_recipient_rate_limit, "sms-recipient", recipient
            )
            if not verdict.allowed:
                raise NotifierError(
                    ErrorCode.RECIPIENT_RATE_LIMITED,
                    "too many transactional SMS to this phone number; try later",
                    retry_after=verdict.retry_after,
                )
        counted = enforce_daily_quota(caller, lane, self.limiter)
        now = utcnow()
        quiet = quiet_hours_deferral(lane, recipient, request.timezone, send_at or now)
        if quiet is not None:
            send_at = quiet[0]
        ttl = timedelta(seconds=request.ttl_seconds or self.settings.default_ttl_seconds)
        row = notification_row(
            api_key_id=caller.id,
            service_id=caller.service.id,
            lane=lane,
            recipient=recipient,
            status=Status.SCHEDULED if send_at else Status.QUEUED,
            now=now,
            expires_at=(send_at or now) + ttl,
            reason=quiet[1] if quiet else None,
            platform=platform.value if platform else None,
            reference=request.reference,
            content=rendered.redacted,
            sealed_content=self.sealer.seal(rendered.content) if rendered.has_secrets else None,
            sensitive_fields=request.sensitive,
            sms_segments=segments,
            template_name=template.name if template else None,
            template_version=template.version if template else None,
            send_at=send_at,
            test=caller.is_test,
        )
        return Prepared(row=row, channel=channel, category=request.category, quota=counted)

    def _template(
        self, request: EmailRequest | SmsRequest | PushRequest, caller: Caller
    ) -> ResolvedTemplate:
        """The caller's service's template of that name (names are unique per service; another
        service's is the same 404 as a missing one, a platform admin's key included)."""
        with self.sessions() as session:
            return templates.resolve(
                session,
                request.template or "",
                request.locale,
                channel=Channel(request.channel),
                scope=caller.service.id,
            )

    @cached_property
    def _unsubscribe(self) -> UnsubscribeTokens:
        return UnsubscribeTokens(self.settings.secret_key, self.settings.public_url)

    def _render(
        self,
        request: EmailRequest | SmsRequest | PushRequest,
        template: ResolvedTemplate | None = None,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> Rendered:
        return render_request(
            request,
            template,
            max_chars=bounds.max_chars(self.settings, Channel(request.channel)),
            pool=self.render_pool,
            timeout=timeout,
            owner=owner,
        )

    # ------------------------------------------------------------------ storage

    def _store(self, session: Session, prepared: list[Prepared]) -> None:
        """Suppression check for all items in one query, then one multi-row insert each for the
        notifications and their first events."""
        found = repository.active_suppressions(
            session, [(item.channel.value, item.row["recipient"]) for item in prepared]
        )
        events = []
        for item in prepared:
            suppression = (
                blocking_suppression(
                    found,
                    item.channel.value,
                    item.row["recipient"],
                    item.category,
                    item.row["service_id"],
                )
                if found
                else None
            )
            if suppression is not None:
                item.row.update(
                    reasons.suppressed(suppression.reason).columns(),
                    status=Status.SUPPRESSED.value,
                    completed_at=item.row["created_at"],
                    published_at=None,
                )
                item.row["sealed_content"] = None
            events.append(first_event(item.row, suppression.reason if suppression else None))
        repository.insert_notifications(session, [p.row for p in prepared], events)
        accepted: Counter[str] = Counter(p.row["lane"] for p in prepared)
        for lane, count in accepted.items():
            metrics.ACCEPTED.labels(lane).inc(count)
        tested: Counter[str] = Counter(p.row["lane"] for p in prepared if p.row["test"])
        for lane, count in tested.items():
            metrics.TEST_ACCEPTED.labels(lane).inc(count)
        suppressed = [p.id for p in prepared if p.row["status"] == Status.SUPPRESSED.value]
        if suppressed:
            repository.owe_webhooks(session, suppressed, Status.SUPPRESSED)

    def store_group(self, prepared: list[Prepared]) -> None:
        """One transaction for a group of prepared notifications (the group committer's write)."""
        with transaction(self.sessions) as session:
            self._store(session, prepared)

    @cached_property
    def committer(self) -> GroupCommitter:
        return GroupCommitter(self.store_group, self._publish)

    def _publish(self, prepared: list[Prepared]) -> None:
        queued: list[Publishable] = [
            (p.id, p.row["lane"], p.row["created_at"])
            for p in prepared
            if p.row["status"] == Status.QUEUED.value
        ]
        if queued and not self.publisher.publish(queued):
            log.warning("intake.publish.deferred_to_sweeper", extra={"count": len(queued)})
