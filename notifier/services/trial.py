"""Who a key may send to: team keys, and live keys of a service in trial mode, only to the
service's allow-list; test keys to anyone (nothing they send is delivered).

The simulator's addresses and numbers (``providers.outbox``) are allowed under every key type:
they never reach a person (the workers send them to the simulator whatever the key), so a new
service can watch every outcome before anyone is on its allow-list. The allow-list is in the
caller's cached service snapshot, so the check costs no database round trip.
"""

from __future__ import annotations

from notifier.errors import ErrorCode, NotifierError
from notifier.keys import Caller, KeyType
from notifier.suppressions import fingerprint
from providers.interface import Channel
from providers.outbox import simulated_outcome


def require_allowed_recipient(caller: Caller, channel: Channel, recipient: str) -> None:
    """Raise 400 ``recipient_not_allowed`` when ``caller`` may not send to ``recipient``
    (normalised as intake normalises it)."""
    if not caller.restricted_to_allow_list or simulated_outcome(recipient) is not None:
        return
    if caller.service.allows(fingerprint(channel.value, recipient)):
        return
    why = (
        "a team key sends only to its service's allow-list"
        if caller.key_type == KeyType.TEAM
        else f"service {caller.service.name} is in trial mode: it sends only to its allow-list"
    )
    raise NotifierError(
        ErrorCode.RECIPIENT_NOT_ALLOWED,
        f"{why}; add the recipient with 'notifier services allow' or use a test key",
    )
