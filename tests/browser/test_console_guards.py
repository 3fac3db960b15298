"""The console's guards in headless Chromium: a throttled campaign stays running and pausable
while its messages wait, the resend confirmation, and the audit entries of refusals.
Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from notifier.campaigns import runs
from notifier.db.models import Notification
from notifier.db.session import transaction
from notifier.support.models import StaffRole
from tests.browser.test_console import _sign_in, _sign_out
from tests.campaigns.conftest import campaign, run_now, template
from tests.factories import ALL_SCOPES, api_key, email
from tests.support.console import ADMIN_EMAIL, SUPPORT_EMAIL, make_staff
from workers.delivery import deliver_ids


def _campaign_row(page) -> dict[str, str]:
    headers = page.locator("table.results thead th").all_inner_texts()
    cells = page.locator("table.results tbody tr").first.locator("td").all_inner_texts()
    return dict(zip(headers, cells, strict=True))


def test_a_throttled_campaign_stays_running_and_pauses_while_messages_wait(
    browser, live_server, screenshots, client, runtime
):
    base = live_server
    make_staff(runtime, SUPPORT_EMAIL, StaffRole.SUPPORT)
    manager = {"Authorization": f"Bearer {api_key(runtime, 'marketing', scopes=ALL_SCOPES)}"}
    template(client, manager, "sale", "email", subject="Sale", body="Hello")
    rows = "".join(f"k{i},k{i}@example.com,yes\n" for i in range(20))
    client.post(
        "/v1/audiences/everyone/import",
        content="key,email,email_consent\n" + rows,
        headers={**manager, "Content-Type": "text/csv"},
    )
    created = campaign(client, manager, throttle_per_minute=6)
    run_id = run_now(client, manager, created["id"])
    runs.run(runtime, run_id)  # fanned out at once; 19 wait for their slot

    context = browser.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()
    _sign_in(page, base, SUPPORT_EMAIL)
    page.get_by_role("link", name="Campaigns").click()
    row = _campaign_row(page)
    assert row["Status"] == "running" and "(running)" in row["Latest run"]
    assert row["Waiting"] == "20" and row["Cancelled"] == "0"
    page.screenshot(path=str(screenshots / "10-throttled-running.png"), full_page=True)

    paused = client.post(f"/v1/campaigns/{created['id']}/pause", headers=manager)
    assert paused.status_code == 200, paused.text  # not "a completed campaign cannot be paused"
    page.reload()
    assert _campaign_row(page)["Status"] == "paused"
    with runtime.sessions() as s:
        held = s.scalars(
            select(Notification.id)
            .where(Notification.reference == run_id)
            .order_by(Notification.recipient)
        ).all()[-1]
    page.goto(f"{base}/support/notifications/{held}")
    assert page.locator("#summary").inner_text().startswith("Held: its campaign was paused")
    page.screenshot(path=str(screenshots / "11-held-by-pause.png"), full_page=True)

    assert client.post(f"/v1/campaigns/{created['id']}/resume", headers=manager).status_code == 200
    page.reload()
    assert page.locator("#summary").inner_text().startswith("Scheduled: it will be sent at")
    assert page.get_by_role("cell", name="released: the campaign was resumed").is_visible()
    page.goto(f"{base}/support/campaigns")
    assert _campaign_row(page)["Status"] == "running"
    assert client.post(f"/v1/campaigns/{created['id']}/cancel", headers=manager).status_code == 200
    page.reload()
    row = _campaign_row(page)
    assert row["Status"] == "cancelled" and row["Cancelled"] == "20" and row["Waiting"] == "0"
    page.screenshot(path=str(screenshots / "12-cancelled.png"), full_page=True)
    context.close()


def test_resend_confirmation_and_the_audit_of_refusals(
    browser, live_server, screenshots, client, auth, runtime, worker_app
):
    base = live_server
    make_staff(runtime, SUPPORT_EMAIL, StaffRole.SUPPORT)
    make_staff(runtime, ADMIN_EMAIL, StaffRole.ADMIN)
    failed = client.post(
        "/v1/notifications", json=email(to="permanent-failure@simulator.notifier.dev"), headers=auth
    ).json()["id"]
    deliver_ids(worker_app.delivery, [failed])
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()

    # a support agent: a wrong password, then a refused admin page
    page.goto(f"{base}/support/login")
    page.fill("#email", SUPPORT_EMAIL)
    page.fill("#password", "not the password at all")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_text("The email or password is wrong.").is_visible()
    _sign_in(page, base, SUPPORT_EMAIL)
    page.goto(f"{base}/support/audit")
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    page.goto(f"{base}/support")
    _sign_out(page, base)

    # an admin resends once, then meets the guard
    _sign_in(page, base, ADMIN_EMAIL)
    page.goto(f"{base}/support/notifications/{failed}")
    page.get_by_role("button", name="Resend this notification").click()
    page.wait_for_url(re.compile(r".*\?done=resent$"))
    first_copy = page.url.rsplit("/", 1)[1].split("?")[0]
    page.goto(f"{base}/support/notifications/{failed}")
    warning = page.locator("#resend-warning").inner_text()
    assert "It was already resent 1 time" in warning
    assert page.locator("ul.resends a").all_inner_texts() == [first_copy]
    page.screenshot(path=str(screenshots / "13-resend-guard.png"), full_page=True)
    page.get_by_role("button", name="Resend anyway").click()  # the browser refuses: unticked
    assert page.url == f"{base}/support/notifications/{failed}"
    page.get_by_label("I understand the customer may receive it more than once").check()
    page.get_by_label("Why resend it anyway (kept in the audit log)").fill(
        "customer says it never came"
    )
    page.get_by_role("button", name="Resend anyway").click()
    page.wait_for_url(re.compile(r".*\?done=resent$"))
    with runtime.sessions() as s:
        copies = s.scalars(select(Notification.id).where(Notification.resend_of == failed)).all()
    assert len(copies) == 2

    # an unconfirmed notification says it may have been delivered and is guarded too
    with transaction(runtime.sessions) as s:
        s.execute(
            update(Notification)
            .where(Notification.id == first_copy)
            .values(status="unconfirmed", provider="outbox")
        )
    page.goto(f"{base}/support/notifications/{first_copy}")
    assert "it may have been delivered" in page.locator("#summary").inner_text()
    assert page.get_by_role("button", name="Resend anyway").is_visible()

    page.get_by_role("link", name="Audit log").click()
    page.screenshot(path=str(screenshots / "14-audit-refusals.png"), full_page=True)
    rows = page.locator("table.results tbody tr").all_inner_texts()
    failed_sign_in = next(r for r in rows if "sign in failed" in r)
    refused = next(r for r in rows if "\trefused\t" in r or "refused" in r.split("\t"))
    assert SUPPORT_EMAIL in failed_sign_in and "127.0.0.1" in failed_sign_in
    assert "HeadlessChrome" in failed_sign_in or "Chrome" in failed_sign_in
    assert "action=view_audit" in refused and SUPPORT_EMAIL in refused
    assert any("confirmed=yes" in r and "reason=customer says it never came" in r for r in rows)
    _sign_out(page, base)
    context.close()
