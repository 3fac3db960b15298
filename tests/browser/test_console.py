"""The support console in headless Chromium: the scenario of issue 5, end to end.

Support signs in, finds a login-code SMS by a differently spelled phone number, opens its
timeline, sees the code redacted and no admin action, signs out; an admin signs in, resends a
failed email, signs out. Screenshots of the main pages go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from notifier.db.models import Notification
from notifier.support.models import StaffRole
from tests.factories import email, sms
from tests.support.console import ADMIN_EMAIL, PASSWORD, SUPPORT_EMAIL, make_staff
from workers.delivery import deliver_ids

OTP = "583920"


def _sign_in(page, base: str, who: str) -> None:
    page.goto(f"{base}/support")
    assert page.url.startswith(f"{base}/support/login")
    # autofocus lands on the email field (applied asynchronously after load), then tab order
    page.wait_for_function("document.activeElement && document.activeElement.id === 'email'")
    page.keyboard.type(who)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Sign in"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/support")
    assert page.get_by_text(f"Signed in as {who}").is_visible()


def _sign_out(page, base: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/support/login\?signed_out=1$"))
    assert page.get_by_text("You are signed out.").is_visible()
    page.goto(f"{base}/support")
    assert "/support/login" in page.url


def test_support_and_admin_scenario(
    browser, live_server, screenshots, client, auth, runtime, worker_app
):
    base = live_server
    make_staff(runtime, SUPPORT_EMAIL, StaffRole.SUPPORT)
    make_staff(runtime, ADMIN_EMAIL, StaffRole.ADMIN)
    otp = client.post(
        "/v1/notifications", json=sms(to="+447911123456", data={"code": OTP}), headers=auth
    ).json()["id"]
    failed = client.post(
        "/v1/notifications",
        json=email(to="permanent-failure@simulator.notifier.dev", reference="order-1001"),
        headers=auth,
    ).json()["id"]
    client.post("/v1/notifications", json=email(), headers=auth)
    deliver_ids(worker_app.delivery, [otp, failed])

    context = browser.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()

    # --- support
    page.goto(f"{base}/support/login")
    page.screenshot(path=str(screenshots / "01-sign-in.png"))
    _sign_in(page, base, SUPPORT_EMAIL)
    page.get_by_label("Recipient, notification id, reference or provider message id").fill(
        "07911 123456"
    )
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r".*/support\?q=07911"))
    assert page.get_by_role("heading", name="1 notification in the last 30 days").is_visible()
    page.screenshot(path=str(screenshots / "02-search-by-phone.png"), full_page=True)
    page.get_by_role("link", name=re.compile(f"notification {otp}")).click()
    page.wait_for_url(f"{base}/support/notifications/{otp}")
    summary = page.locator("#summary").inner_text()
    assert summary.startswith("The text message was accepted by outbox at ")
    assert page.get_by_text("Your code is [redacted]").is_visible()
    assert page.get_by_role("heading", name="Timeline").is_visible()
    assert page.locator("table.events tr.kind-attempt").count() == 1
    assert OTP not in page.content()
    assert page.get_by_role("button", name=re.compile("Resend")).count() == 0
    page.screenshot(path=str(screenshots / "03-notification-timeline.png"), full_page=True)
    page.get_by_role("link", name="+447911123456").first.click()
    page.wait_for_url(re.compile(r".*/support/recipient\?address="))
    assert page.get_by_role("heading", name="Everything sent to +447911123456").is_visible()
    page.screenshot(path=str(screenshots / "04-recipient.png"), full_page=True)
    page.goto(f"{base}/support/notifications/{failed}")
    assert page.get_by_role("button", name=re.compile("Resend")).count() == 0  # support: read-only
    _sign_out(page, base)

    # --- admin
    _sign_in(page, base, ADMIN_EMAIL)
    page.get_by_label("Recipient, notification id, reference or provider message id").fill(
        "order-1001"
    )
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("link", name=re.compile(f"notification {failed}")).click()
    page.wait_for_url(f"{base}/support/notifications/{failed}")
    assert (
        "Rejected by outbox: simulated permanent failure (400)."
        in page.locator("#summary").inner_text()
    )
    page.screenshot(path=str(screenshots / "05-failed-notification-admin.png"), full_page=True)
    page.get_by_role("button", name="Resend this notification").click()
    page.wait_for_url(re.compile(r".*/support/notifications/[0-9a-f-]{36}\?done=resent$"))
    new_id = page.url.rsplit("/", 1)[1].split("?")[0]
    assert new_id != failed
    assert page.get_by_text("Resent: this is the new notification").is_visible()
    page.screenshot(path=str(screenshots / "06-resent.png"), full_page=True)
    with runtime.sessions() as s:
        copy = s.scalars(select(Notification).where(Notification.resend_of == failed)).one()
    assert copy.id == new_id and copy.status == "queued"
    page.get_by_role("link", name="Audit log").click()
    assert page.get_by_role("cell", name="resend").first.is_visible()
    page.screenshot(path=str(screenshots / "07-audit-log.png"), full_page=True)
    _sign_out(page, base)
    context.close()
