"""A STOP is the recipient's legal opt-out: staff cannot lift it (not even an admin, not even
with a reason); only a START from that number does."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from notifier.db.models import Suppression
from notifier.support.models import AuditEntry
from tests.campaigns.test_optout import inbound, signed_post


@pytest.fixture
def settings(tmp_path):
    from tests.factories import make_settings

    return make_settings(
        tmp_path, twilio_auth_token="twilio-test-token", public_url="https://notify.example.com"
    )


def test_an_admin_cannot_lift_a_stop_and_a_start_still_can(
    admin_console, client, settings, runtime
):
    assert signed_post(client, settings, inbound("STOP")).status_code == 200
    with runtime.sessions() as s:
        stop = s.scalars(select(Suppression)).one()
    assert stop.reason == "stop"

    page = admin_console.get("/support/recipient", params={"address": "+447911123456"}).text
    assert "only a START sent from this number lifts it" in page
    assert f"/support/suppressions/{stop.id}/lift" not in page  # no form to try

    refused = admin_console.post(
        f"/support/suppressions/{stop.id}/lift",
        data={"csrf_token": admin_console.csrf, "reason": "customer phoned and asked"},
    )
    assert refused.status_code == 409
    assert "only a START sent from that number lifts it" in refused.text
    with runtime.sessions() as s:
        assert s.get(Suppression, stop.id).lifted_at is None
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "refused")).one()
    assert entry.query["action"] == "lift_suppression" and entry.query["suppression_id"] == stop.id

    assert signed_post(client, settings, inbound("START")).status_code == 200
    with runtime.sessions() as s:
        lifted = s.get(Suppression, stop.id)
    assert lifted.lifted_at is not None and lifted.lifted_by == "START"
