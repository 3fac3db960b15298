"""The resend guard: a notification that may have been delivered (``unconfirmed``) or that was
already resent is resent only with a confirmation and a reason; earlier resends are shown and
every resend, and every refusal, is audited."""

from __future__ import annotations

import re

from sqlalchemy import func, select, update

from notifier.db.models import Notification
from notifier.db.session import transaction
from notifier.support.models import AuditEntry
from tests.factories import email
from tests.notifications_api import post
from tests.support.console import found, query_of
from tests.support.test_pages import drain
from workers.delivery import deliver_ids

FAILING = "permanent-failure@simulator.notifier.dev"


def _resend(console, notification_id: str, **form: str):
    return console.post(
        f"/support/notifications/{notification_id}/resend",
        data={"csrf_token": console.csrf, **form},
        follow_redirects=False,
    )


def _copies(runtime, original: str) -> int:
    with runtime.sessions() as s:
        return s.scalar(
            select(func.count()).select_from(Notification).where(Notification.resend_of == original)
        )


def _audit(runtime, action: str) -> list[AuditEntry]:
    with runtime.sessions() as s:
        return list(
            s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        )


def test_a_second_resend_needs_a_confirmation_and_a_reason(
    admin_console, client, auth, worker_app, runtime
):
    failed = post(client, auth, email(to=FAILING))
    deliver_ids(worker_app.delivery, [failed])
    first = _resend(admin_console, failed)
    assert first.status_code == 303 and _copies(runtime, failed) == 1
    first_copy = found(r"notifications/([0-9a-f-]{36})", first.headers["location"])
    drain(runtime)

    page = admin_console.get(f"/support/notifications/{failed}").text
    assert "It was already resent 1 time" in page and "Resend anyway" in page
    assert f'<li><a href="/support/notifications/{first_copy}"' in page  # the earlier resend

    for form in (
        {},
        {"confirm": "yes"},
        {"reason": "customer asked"},
        {"confirm": "yes", "reason": "  "},
    ):
        refused = _resend(admin_console, failed, **form)
        assert refused.status_code == 409, form
        assert "Tick the confirmation and say why" in refused.text
    assert _copies(runtime, failed) == 1 and drain(runtime) == []  # nothing stored, nothing sent
    refusals = _audit(runtime, "refused")
    assert len(refusals) == 4 and {query_of(r)["action"] for r in refusals} == {"resend"}

    second = _resend(
        admin_console, failed, confirm="yes", reason="customer says the first never came"
    )
    assert second.status_code == 303 and _copies(runtime, failed) == 2
    assert len(drain(runtime)) == 1
    resends = _audit(runtime, "resend")
    assert [query_of(r).get("confirmed") for r in resends] == [None, "yes"]
    assert query_of(resends[1])["reason"] == "customer says the first never came"
    assert resends[1].client_address == "testclient" and resends[1].user_agent


def test_an_unconfirmed_notification_says_it_may_have_been_delivered_and_is_guarded(
    admin_console, client, auth, worker_app, runtime
):
    sent = post(client, auth, email(to="temporary-failure@simulator.notifier.dev"))
    deliver_ids(worker_app.delivery, [sent])  # one real attempt at the outbox, then a retry
    # the engine's final outcome once retries on that provider run out (issue "Sent once under
    # provider faults"): the request reached it and no definite answer came
    with transaction(runtime.sessions) as s:
        s.execute(
            update(Notification)
            .where(Notification.id == sent)
            .values(
                status="unconfirmed",
                provider="outbox",
                status_reason="no answer after the request was sent",
            )
        )
    page = admin_console.get(f"/support/notifications/{sent}").text
    summary = found(r'<p class="summary" id="summary">(.*?)</p>', page, re.DOTALL)
    assert summary.startswith("The request reached outbox and no answer came")
    assert "it may have been delivered" in summary
    assert "may have been delivered, and a resend may give the customer a second copy" in page
    assert _resend(admin_console, sent).status_code == 409 and _copies(runtime, sent) == 0
    ok = _resend(admin_console, sent, confirm="yes", reason="recipient confirmed nothing arrived")
    assert ok.status_code == 303 and _copies(runtime, sent) == 1
    (entry,) = _audit(runtime, "resend")
    assert query_of(entry)["confirmed"] == "yes" and entry.notification_id == sent
