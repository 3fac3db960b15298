"""What the platform configured, as the rules about services need it: the provider names of
each lane's chain and the sender identities each lane sends as.

Senders are provider options (``providers/*``): an email provider's ``from_address``, an SNS
``sender_id``, Twilio's ``transactional_from`` / ``promotional_messaging_service_sid`` (the
prefix names the category, whichever chain the instance is in), an APNs ``topic``, an FCM
``project_id``. They are read from the chains the workers build (the providers file, through
``notifier.provider_config``), so there is one reader of that file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from notifier.errors import ErrorCode, NotifierError
from notifier.provider_config import ProviderSpec, load_chains  # the one reader of the file
from providers.interface import Category, ConfigurationError, Lane

if TYPE_CHECKING:
    from notifier.config import Settings

# provider option (without a category prefix) -> the service's sender field it corresponds to
SENDER_OPTIONS = {
    "from_address": "from_address",
    "from": "sender_id",
    "sender_id": "sender_id",
    "messaging_service_sid": "messaging_service_sid",
    "topic": "apns_topic",
    "project_id": "fcm_project_id",
}
IDENTITY_FIELDS = frozenset(SENDER_OPTIONS.values())


@dataclass(frozen=True)
class Platform:
    chains: Mapping[Lane, tuple[str, ...]]
    senders: Mapping[Lane, frozenset[str]]  # identity values, case-folded
    retention_days: int

    @classmethod
    def from_specs(
        cls, chains: Mapping[Lane, Sequence[ProviderSpec]], retention_days: int
    ) -> Platform:
        senders: dict[Lane, set[str]] = {lane: set() for lane in Lane}
        for lane, specs in chains.items():
            for spec in specs:
                for target, value in _sender_options(lane, spec.options):
                    senders[target].add(value)
        return cls(
            chains={lane: tuple(spec.name for spec in specs) for lane, specs in chains.items()},
            senders={lane: frozenset(values) for lane, values in senders.items()},
            retention_days=retention_days,
        )


def _sender_options(lane: Lane, options: Mapping[str, Any]) -> list[tuple[Lane, str]]:
    found: list[tuple[Lane, str]] = []
    for key, value in options.items():
        category, _, bare = key.partition("_")
        if category in (Category.TRANSACTIONAL, Category.PROMOTIONAL) and bare:
            target = Lane.of(lane.channel, Category(category))
        else:
            target, bare = lane, key
        if bare in SENDER_OPTIONS and value:
            found.append((target, str(value).casefold()))
    return found


def load_platform(settings: Settings) -> Platform:
    """The platform as configured for this process; a providers file that cannot be read here
    is a 503 (the admin route cannot check a service's settings against it), never a 500."""
    try:
        chains = load_chains(settings.providers_file, settings.outbox_dir)
    except ConfigurationError as e:
        raise NotifierError(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"the platform's provider configuration cannot be read: {e}",
        ) from e
    return Platform.from_specs(chains, settings.notification_retention_days)
