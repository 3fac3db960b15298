"""In production the allowed SNS topics are required: with ``NOTIFIER_SES_TOPIC_ARNS`` unset,
a correctly signed message from any AWS account's topic is refused, its subscription is never
confirmed and its bounces are never applied."""

from __future__ import annotations

from notifier.config import Environment
from tests.factories import email
from tests.fakes.aws import ses_event
from tests.receipts.flow import post_sns, send
from tests.receipts.test_ses_receipts import TO, assert_refused, assert_unchanged, post_event


def test_production_without_allowed_topics_refuses_every_sns_message(
    client, auth, worker_app, sns, sns_server, settings
) -> None:
    sent = send(client, auth, worker_app, email())
    settings.ses_topic_arns = []
    settings.env = Environment.PRODUCTION

    confirmation = sns.subscription_confirmation()
    response = post_sns(client, confirmation)
    assert response.status_code == 403
    assert "NOTIFIER_SES_TOPIC_ARNS is not set" in response.json()["error"]["message"]
    subscribe_path = confirmation["SubscribeURL"].removeprefix(sns_server.url(""))
    assert subscribe_path not in sns_server.requests  # never confirmed

    assert_refused(client, sns.notification(ses_event("Bounce", sent["provider_message_id"], [TO])))
    assert_unchanged(client, auth, worker_app, sent["id"])  # no bounce, no suppression

    settings.ses_topic_arns = [sns.signer.topic_arn()]  # the operator names the topic
    post_event(client, sns, ses_event("Bounce", sent["provider_message_id"], [TO]))
