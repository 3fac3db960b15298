"""A provider from outside this code base, plugged in through the ``notifier.providers`` entry
point group the way a third-party package would: :func:`install_distribution` writes the
``.dist-info`` metadata of a tiny distribution declaring it into a folder, and putting that folder
on ``sys.path`` (or ``PYTHONPATH``) makes ``importlib.metadata`` find the entry point.

The provider itself "sends" SMS to a list in memory (class-wide, so tests can read what the
worker's instance sent) and answers :meth:`check` without any network.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from providers.interface import (
    Channel,
    ConfigurationError,
    Lane,
    Message,
    Provider,
    SendResult,
)

DISTRIBUTION = "notifier_pigeon_post"
KIND = "pigeon"


class PigeonProvider(Provider):
    kind: ClassVar[str] = KIND
    channel: ClassVar[Channel] = Channel.SMS
    sent: ClassVar[list[tuple[str, Message]]] = []

    def __init__(self, name: str, lane: Lane, options: Mapping[str, Any]) -> None:
        super().__init__(name, lane, options)
        if not options.get("loft"):
            raise ConfigurationError(f"provider {name!r} (pigeon): loft is required")

    async def _send(self, message: Message) -> SendResult:
        self.sent.append((self.name, message))
        return SendResult(f"pigeon-{uuid.uuid4()}", "200")

    async def check(self, connect: bool = False) -> str:
        return f"loft {self.options['loft']}" + (" (reachable)" if connect else "")


def install_distribution(directory: Path) -> Path:
    """Write the metadata of a distribution declaring the pigeon provider; returns the folder to
    put on ``sys.path``."""
    info = directory / f"{DISTRIBUTION}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[notifier.providers]\n{KIND} = tests.fakes.third_party_provider:PigeonProvider\n"
    )
    return directory
