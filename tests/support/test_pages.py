"""The console's pages on real timelines: search, notification, recipient, actions, audit."""

from __future__ import annotations

import re

from sqlalchemy import select

from notifier.db.models import DeliveryEvent, Notification, Suppression
from notifier.support.models import AuditEntry
from notifier.support.web import short_id
from tests.factories import email, sms
from tests.notifications_api import post
from tests.support.console import ADMIN_EMAIL, SUPPORT_EMAIL, found
from workers.delivery import deliver_ids


def result_ids(html: str) -> list[str]:
    return re.findall(r'href="/support/notifications/([0-9a-f-]{36})"', html)


def test_search_by_a_differently_spelled_phone_number(console, client, auth, worker_app):
    otp = post(client, auth, sms(to="+447911123456"))
    post(client, auth, sms(to="+447911123457"))
    deliver_ids(worker_app.delivery, [otp])
    for spelling in ("07911 123456", "+44 (7911) 123-456", "447911123456"):
        page = console.get("/support", params={"q": spelling})
        assert page.status_code == 200
        assert result_ids(page.text) == [otp], spelling
    assert "1 notification in the last 30 days" in page.text


def test_search_by_id_reference_and_provider_message_id(console, client, auth, worker_app, runtime):
    target = post(client, auth, email(reference="order-77"))
    post(client, auth, email(reference="order-78", to="bob@example.com"))
    deliver_ids(worker_app.delivery, [target])
    with runtime.sessions() as s:
        message_id = s.get(Notification, target).provider_message_id
    for by, text in (
        ("id", target),
        ("reference", "order-77"),
        ("provider_message_id", message_id),
        ("anything", target),
        ("anything", "order-77"),
        ("anything", message_id),
        ("recipient", "ADA@example.com"),
    ):
        assert result_ids(console.get("/support", params={"q": text, "by": by}).text) == [target], (
            by
        )
    assert result_ids(console.get("/support", params={"q": "order-77", "by": "id"}).text) == []


def test_filters_counts_and_pagination(console, client, auth, worker_app, runtime):
    from tests.factories import api_key

    other = {"Authorization": f"Bearer {api_key(runtime, name='shop')}"}
    sent = [post(client, auth, email()) for _ in range(3)]
    failed = post(client, auth, email(to="permanent-failure@simulator.notifier.dev"))
    shop = post(client, other, sms())
    deliver_ids(worker_app.delivery, [*sent, failed])
    page = console.get("/support", params={"q": ""})
    assert "5 notifications" in page.text
    assert re.search(r"status-failed\">failed</span> 1", page.text)
    assert re.search(r"status-sent\">sent</span> 3", page.text)
    assert result_ids(console.get("/support", params={"q": "", "status": "failed"}).text) == [
        failed
    ]
    assert result_ids(console.get("/support", params={"q": "", "caller": "shop"}).text) == [shop]
    assert result_ids(console.get("/support", params={"q": "", "channel": "sms"}).text) == [shop]
    assert result_ids(
        console.get("/support", params={"q": "", "lane": "sms.transactional"}).text
    ) == [shop]
    newest_first = list(reversed([*sent, failed, shop]))
    assert result_ids(page.text) == newest_first
    # keyset pagination, two pages of 50 over 60 rows
    for i in range(55):
        post(client, auth, email(to=f"many{i}@example.com", reference="bulk"))
    first = console.get("/support", params={"q": "bulk", "by": "reference"}).text
    assert len(result_ids(first)) == 50
    older = found(r'href="(/support\?[^"]*cursor=[^"]+)">Older results', first)
    second = console.get(older.replace("&amp;", "&")).text
    assert len(result_ids(second)) == 5
    assert not set(result_ids(first)) & set(result_ids(second))
    everything = console.get("/support", params={"q": ""}).text  # no text: every notification
    older = found(r'href="(/support\?[^"]*cursor=[^"]+)">Older results', everything)
    assert len(result_ids(console.get(older.replace("&amp;", "&")).text)) == 10


def test_clear_empty_and_error_states(console):
    empty = console.get("/support", params={"q": "ada@example.com"})
    assert "No notifications for ada@example.com in the last 30 days." in empty.text
    assert "Search all time instead" in empty.text
    bad = console.get("/support", params={"q": "x", "from": "21/11/2026", "status": "lost"})
    assert bad.status_code == 422
    assert "From must be a date like 2026-11-21." in bad.text
    assert "Status must be one of" in bad.text
    missing = console.get("/support/notifications/does-not-exist")
    assert (
        missing.status_code == 404
        and "There is no notification with the id does-not-exist" in missing.text
    )
    assert console.get("/support", params={"q": "x", "cursor": "garbage"}).status_code == 422


def test_notification_page_explains_a_bounce_and_its_suppression(
    admin_console, client, auth, worker_app
):
    bounced = post(client, auth, email(to="invalid@simulator.notifier.dev"))
    deliver_ids(worker_app.delivery, [bounced])
    later = post(client, auth, email(to="invalid@simulator.notifier.dev"))
    page = admin_console.get(f"/support/notifications/{bounced}").text
    summary = found(r'<p class="summary" id="summary">(.*?)</p>', page, re.DOTALL)
    assert summary.startswith(
        "Bounced by the recipient&#39;s mail server: simulated invalid recipient (404). "
        "The address has been suppressed since "
    )
    assert summary.endswith("1 later email to it was not sent.")
    for heading in (
        "Details",
        "Content",
        "Timeline",
        "Receipts from the provider",
        "Suppressions of this recipient (email)",
        "Status webhooks to the caller",
    ):
        assert heading in page
    assert "outbox" in page and "InvalidRecipientError: simulated invalid recipient" in page
    assert "Lift suppression" in page
    assert "No status webhook was sent to the caller" in page
    later_page = admin_console.get(f"/support/notifications/{later}").text
    assert "Not sent: the address invalid@simulator.notifier.dev was suppressed on" in later_page


def test_support_sees_the_timeline_but_no_admin_action(console, client, auth, worker_app):
    failed = post(client, auth, email(to="permanent-failure@simulator.notifier.dev"))
    deliver_ids(worker_app.delivery, [failed])
    page = console.get(f"/support/notifications/{failed}").text
    assert "Rejected by outbox: simulated permanent failure (400). It will not be retried." in page
    assert "/resend" not in page and "Resend" not in page


def test_admin_resends_a_failed_notification(admin_console, client, auth, worker_app, runtime):
    failed = post(
        client, auth, email(to="permanent-failure@simulator.notifier.dev", reference="r-1")
    )
    deliver_ids(worker_app.delivery, [failed])
    page = admin_console.get(f"/support/notifications/{failed}").text
    assert "Resend this notification" in page
    drain(runtime)
    response = admin_console.post(
        f"/support/notifications/{failed}/resend",
        data={"csrf_token": admin_console.csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    new_id = found(
        r"/support/notifications/([0-9a-f-]{36})\?done=resent", response.headers["location"]
    )
    assert drain(runtime) == [[new_id]]  # published on its lane's queue
    with runtime.sessions() as s:
        copy = s.get(Notification, new_id)
        assert (copy.resend_of, copy.status, copy.reference, copy.recipient) == (
            failed,
            "queued",
            "r-1",
            "permanent-failure@simulator.notifier.dev",
        )
        resent = s.scalars(select(DeliveryEvent).where(DeliveryEvent.kind == "resent")).all()
        assert {e.notification_id for e in resent} == {failed, new_id}
        assert (
            s.scalars(select(AuditEntry).where(AuditEntry.action == "resend")).one().actor
            == ADMIN_EMAIL
        )
    new_page = admin_console.get(response.headers["location"]).text
    assert (
        "Resent: this is the new notification" in new_page
        and f"/support/notifications/{failed}" in new_page
    )
    assert (
        f"It was resent as {new_id}." in admin_console.get(f"/support/notifications/{failed}").text
    )
    again = admin_console.post(
        f"/support/notifications/{new_id}/resend", data={"csrf_token": admin_console.csrf}
    )
    assert (
        again.status_code == 409
        and "Only failed, expired or unconfirmed notifications can be resent" in again.text
    )


def test_resend_refuses_when_the_sensitive_values_are_gone(
    admin_console, client, auth, worker_app, runtime
):
    failed = post(client, auth, sms(to="+61491570158"))  # simulated permanent failure
    deliver_ids(worker_app.delivery, [failed])
    response = admin_console.post(
        f"/support/notifications/{failed}/resend", data={"csrf_token": admin_console.csrf}
    )
    assert response.status_code == 409
    assert "sensitive values (code) that were destroyed" in response.text
    with runtime.sessions() as s:
        assert (
            s.scalars(select(Notification).where(Notification.resend_of == failed)).first() is None
        )


def test_resend_refuses_while_the_recipient_is_suppressed(admin_console, client, auth, worker_app):
    bounced = post(client, auth, email(to="invalid@simulator.notifier.dev"))
    deliver_ids(worker_app.delivery, [bounced])
    response = admin_console.post(
        f"/support/notifications/{bounced}/resend", data={"csrf_token": admin_console.csrf}
    )
    assert response.status_code == 409 and "Lift the suppression first" in response.text


def test_admin_lifts_a_suppression_with_a_reason(admin_console, client, auth, worker_app, runtime):
    bounced = post(client, auth, email(to="invalid@simulator.notifier.dev"))
    deliver_ids(worker_app.delivery, [bounced])
    with runtime.sessions() as s:
        suppression_id = s.scalars(select(Suppression.id)).one()
    lift = f"/support/suppressions/{suppression_id}/lift"
    no_reason = admin_console.post(lift, data={"csrf_token": admin_console.csrf, "reason": " "})
    assert no_reason.status_code == 422 and "Say why" in no_reason.text
    done = admin_console.post(
        lift,
        data={
            "csrf_token": admin_console.csrf,
            "reason": "mailbox fixed",
            "back": f"/support/notifications/{bounced}",
        },
        follow_redirects=False,
    )
    assert (
        done.status_code == 303
        and done.headers["location"] == f"/support/notifications/{bounced}?done=lifted"
    )
    with runtime.sessions() as s:
        row = s.get(Suppression, suppression_id)
        assert (row.lifted_reason, row.lifted_by) == (
            "mailbox fixed",
            ADMIN_EMAIL,
        ) and row.lifted_at
    page = admin_console.get(done.headers["location"]).text
    assert "The suppression was lifted." in page and "mailbox fixed" in page
    again = admin_console.post(lift, data={"csrf_token": admin_console.csrf, "reason": "again"})
    assert again.status_code == 409
    resend = admin_console.post(
        f"/support/notifications/{bounced}/resend",
        data={"csrf_token": admin_console.csrf},
        follow_redirects=False,
    )
    assert resend.status_code == 303  # nothing blocks it now


def test_recipient_page_shows_every_lane_and_suppressions(console, client, auth, runtime):
    a = post(client, auth, sms(to="+447911123456"))
    b = post(
        client,
        auth,
        sms(to="+447911123456", category="promotional", data={}, sensitive=[], body="Sale"),
    )
    post(client, auth, sms(to="+447911123458"))
    with __import__("notifier.db.session", fromlist=["transaction"]).transaction(
        runtime.sessions
    ) as s:
        s.add(Suppression(channel="sms", recipient="+447911123456", reason="stop"))
    page = console.get("/support/recipient", params={"address": "07911 123456"}).text
    assert result_ids(page) == [b, a]
    assert "sms.promotional" in page and "sms.transactional" in page
    assert "stop" in page and "Active" in page
    assert "Lift suppression" not in page  # support role
    empty = console.get("/support/recipient", params={"address": "nobody@example.com"}).text
    assert "No notifications for nobody@example.com." in empty
    assert "has never been suppressed" in empty


def test_every_search_and_view_is_audited_and_admins_can_read_it(
    console, admin_console, client, auth, runtime
):
    notification_id = post(client, auth, email())
    console.get("/support", params={"q": "Ada@Example.com", "status": "queued"})
    console.get(f"/support/notifications/{notification_id}")
    console.get("/support/recipient", params={"address": "ada@example.com"})
    with runtime.sessions() as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.actor == SUPPORT_EMAIL).order_by(AuditEntry.id)
        ).all()
    actions = [(r.action, r.notification_id, r.query) for r in rows]
    assert actions[0] == ("sign_in", None, None)
    assert actions[1][0] == "search"
    assert actions[1][2]["anything"] == "Ada@Example.com" and actions[1][2]["status"] == "queued"
    assert actions[2] == ("view_notification", notification_id, None)
    assert actions[3] == ("view_recipient", None, {"recipient": "ada@example.com"})
    assert all(r.actor_kind == "staff" and r.at for r in rows)
    audit_page = admin_console.get("/support/audit", params={"actor": SUPPORT_EMAIL})
    assert audit_page.status_code == 200
    assert "view notification" in audit_page.text and "anything=Ada@Example.com" in audit_page.text
    assert short_id(notification_id) in audit_page.text


def drain(runtime) -> list[list[str]]:
    """Take every delivery task off the email.transactional queue of the in-memory broker."""
    found = []
    with runtime.celery.connection_for_read() as connection:
        queue = connection.SimpleQueue("email.transactional")
        try:
            while True:
                try:
                    message = queue.get(timeout=0.2)
                except queue.Empty:
                    break
                args = message.payload[0]  # (args, kwargs, embed): args == [ids]
                found.append(args[0])
                message.ack()
        finally:
            queue.close()
    return found
