"""A provider that answers from a script: stands in for a vendor in engine and pipeline tests.

Each delivery pops the next scripted answer (a SendResult, a ProviderError to raise, or a float:
seconds to wait before accepting); when the script is empty it accepts. It records every message
it was given.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from providers.interface import Channel, Lane, Message, Provider, ProviderError, SendResult


class ScriptedProvider(Provider):
    kind: ClassVar[str] = "scripted"
    channel: ClassVar[Channel | None] = None

    def __init__(
        self,
        name: str,
        lane: Lane,
        options: Mapping[str, Any] | None = None,
        script: list[SendResult | ProviderError | float] | None = None,
    ) -> None:
        super().__init__(name, lane, options or {})
        self.script = list(script or [])
        self.received: list[Message] = []

    async def _send(self, message: Message) -> SendResult:
        self.received.append(message)
        answer = (
            self.script.pop(0) if self.script else SendResult(f"{self.name}-{uuid.uuid4()}", "202")
        )
        if isinstance(answer, float):  # a provider that takes this long to answer
            await asyncio.sleep(answer)
            answer = SendResult(f"{self.name}-{uuid.uuid4()}", "202")
        if isinstance(answer, ProviderError):
            raise answer
        return answer
