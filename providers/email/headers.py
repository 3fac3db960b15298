"""The headers every email adapter adds beyond From/To/Subject, decided once.

The notification id (so a bounce can be traced back), the caller's own headers except those the
adapter owns, and on promotional mail with an unsubscribe URL the RFC 8058 one-click pair
(https://www.rfc-editor.org/rfc/rfc8058).

The Message-ID of a notification is derived from its id, not drawn at random: every resend of
the same notification (after a timeout that left acceptance unknown) carries the same
Message-ID, which is how mail systems and clients recognise a duplicate.
"""

from __future__ import annotations

from providers.interface import Category, EmailMessage

RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "x-notifier-notification-id",
    }
)


def extra_headers(message: EmailMessage) -> list[tuple[str, str]]:
    """The sending service's Reply-To, when it has one, replaces a caller's."""
    headers = [("X-Notifier-Notification-Id", message.notification_id)]
    if message.reply_to:
        headers.append(("Reply-To", message.reply_to))
    headers += [
        (name, value)
        for name, value in message.headers.items()
        if name.lower() not in RESERVED_HEADERS
        and not (message.reply_to and name.lower() == "reply-to")
    ]
    if message.unsubscribe_url and message.lane.category is Category.PROMOTIONAL:
        headers.append(("List-Unsubscribe", f"<{message.unsubscribe_url}>"))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return headers


def message_id_for(notification_id: str, domain: str) -> str:
    """The Message-ID (with angle brackets) of a notification: the same on every resend."""
    return f"<{notification_id}@{domain}>"
