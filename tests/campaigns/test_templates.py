"""Templates: versions, locale variants with fallback, preview, and use by single notifications."""

from __future__ import annotations

from tests.campaigns.conftest import template


def test_each_save_is_a_new_version_and_old_versions_stay(client, manager):
    first = template(client, manager, "welcome", "email", subject="Hi {{ name }}", body="v1")
    second = template(client, manager, "welcome", "email", subject="Hello {{ name }}", body="v2")
    assert (first["version"], second["version"]) == (1, 2)
    latest = client.get("/v1/templates/welcome", headers=manager).json()
    assert latest["version"] == 2 and latest["variants"]["en"]["body"] == "v2"
    old = client.get("/v1/templates/welcome?version=1", headers=manager).json()
    assert old["variants"]["en"]["body"] == "v1"
    versions = client.get("/v1/templates/welcome/versions", headers=manager).json()
    assert [v["version"] for v in versions] == [1, 2]


def test_locale_falls_back_from_region_to_language_to_default(client, manager):
    template(
        client,
        manager,
        "promo",
        "sms",
        locale="en",
        body="Sale, {{ name }}!",
        variants={
            "fr": {"body": "Soldes, {{ name }} !"},
            "pt-BR": {"body": "Promoção, {{ name }}!"},
        },
    )

    def preview(locale):
        response = client.post(
            "/v1/templates/promo/preview",
            json={"locale": locale, "data": {"name": "Ada"}},
            headers=manager,
        )
        assert response.status_code == 200, response.text
        return response.json()

    assert (
        preview("fr-CA")["locale"] == "fr"
        and preview("fr-CA")["content"]["body"] == "Soldes, Ada !"
    )
    assert preview("pt")["locale"] == "pt-BR"
    assert preview("de")["locale"] == "en" and preview(None)["content"]["body"] == "Sale, Ada!"
    assert preview("fr")["sms"]["segments"] == 1


def test_preview_shows_sms_segments_and_strict_variables(client, manager):
    template(client, manager, "long", "sms", body="{{ text }}")
    body = client.post(
        "/v1/templates/long/preview", json={"data": {"text": "x" * 200}}, headers=manager
    ).json()
    assert body["sms"]["segments"] == 2 and body["sms"]["characters"] == 200
    missing = client.post("/v1/templates/long/preview", json={"data": {}}, headers=manager)
    assert (
        missing.status_code == 422 and missing.json()["error"]["code"] == "missing_personalisation"
    )


def test_broken_template_and_channel_change_are_refused(client, manager):
    bad = client.post(
        "/v1/templates", json={"name": "bad", "channel": "sms", "body": "{% if %}"}, headers=manager
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "template_error"
    template(client, manager, "t", "sms", body="hi")
    clash = client.post(
        "/v1/templates",
        json={"name": "t", "channel": "email", "subject": "s", "body": "b"},
        headers=manager,
    )
    assert clash.status_code == 409


def test_templates_need_the_campaigns_scope(client, auth):
    response = client.post(
        "/v1/templates", json={"name": "x", "channel": "sms", "body": "b"}, headers=auth
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden_scope"


def test_single_notification_by_template_records_name_and_version(client, manager):
    template(client, manager, "receipt", "email", subject="Receipt", body="Old")
    template(
        client,
        manager,
        "receipt",
        "email",
        subject="Receipt {{ n }}",
        body="Thanks {{ name }}",
        variants={"fr": {"subject": "Reçu {{ n }}", "body": "Merci {{ name }}"}},
    )
    response = client.post(
        "/v1/notifications",
        json={
            "channel": "email",
            "to": "ada@example.com",
            "template": "receipt",
            "locale": "fr-FR",
            "data": {"n": 7, "name": "Ada"},
        },
        headers=manager,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["content"] == {"subject": "Reçu 7", "body": "Merci Ada"}
    from notifier.db.models import Notification

    with client.app.state.runtime.sessions() as s:
        row = s.get(Notification, body["id"])
        assert (row.template_name, row.template_version) == ("receipt", 2)


def test_template_errors_at_intake(client, manager):
    template(client, manager, "otp", "sms", body="Code {{ code }}")
    cases = [
        ({"channel": "sms", "to": "+447911123456", "template": "nope"}, 404, "not_found"),
        ({"channel": "email", "to": "a@example.com", "template": "otp"}, 422, "validation_error"),
        (
            {"channel": "sms", "to": "+447911123456", "template": "otp"},
            422,
            "missing_personalisation",
        ),
        (
            {"channel": "sms", "to": "+447911123456", "template": "otp", "body": "x"},
            422,
            "validation_error",
        ),
        ({"channel": "sms", "to": "+447911123456"}, 422, "validation_error"),
    ]
    for payload, status, code in cases:
        response = client.post("/v1/notifications", json=payload, headers=manager)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), payload


def test_email_preview_renders_the_unsubscribe_link_as_a_campaign_would(client, manager):
    from tests.campaigns.conftest import template

    template(
        client, manager, "news", "email", subject="News", body="Hi. Leave: {{ unsubscribe_url }}"
    )
    template(client, manager, "plain", "email", subject="News", body="Hi.")
    linked = client.post("/v1/templates/news/preview", json={"data": {}}, headers=manager)
    assert linked.status_code == 200, linked.text
    body = linked.json()["content"]["body"]
    assert body == "Hi. Leave: https://notify.example.com/u/preview-unsubscribe-link"
    footer = client.post("/v1/templates/plain/preview", json={}, headers=manager).json()
    assert footer["content"]["body"].endswith(
        "Unsubscribe: https://notify.example.com/u/preview-unsubscribe-link\n"
    )
