"""The shared provider contract (providers/contract.py) run by the development outbox and by
the third-party example plug-in, the way a plug-in's own test suite runs it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from providers.contract import ProviderContract
from providers.interface import Lane, Message, SmsMessage
from providers.outbox import OutboxProvider
from tests.fakes.third_party_provider import PigeonProvider


def sms(lane: Lane) -> SmsMessage:
    return SmsMessage(notification_id="n-1", lane=lane, to="+447700900123", body="hello")


class TestOutboxContract(ProviderContract):
    provider_class = OutboxProvider
    lane = Lane.SMS_TRANSACTIONAL

    @pytest.fixture
    def provider_options(self, tmp_path: Path) -> dict[str, Any]:
        return {"path": str(tmp_path / "outbox")}

    @pytest.fixture
    def message_for(self) -> Callable[[Lane], Message]:
        return sms

    @pytest.fixture
    def received(self, tmp_path: Path) -> Callable[[], int]:
        return lambda: len(list((tmp_path / "outbox").glob("*/*.json")))


class TestPluginContract(ProviderContract):
    provider_class = PigeonProvider
    lane = Lane.SMS_TRANSACTIONAL

    @pytest.fixture
    def provider_options(self) -> dict[str, Any]:
        return {"loft": "rooftop"}

    @pytest.fixture
    def message_for(self) -> Callable[[Lane], Message]:
        return sms

    @pytest.fixture
    def received(self) -> Callable[[], int]:
        return lambda: len(PigeonProvider.sent)


def test_a_second_send_of_one_notification_is_kept_beside_the_first(tmp_path: Path) -> None:
    """What a recipient would see: two sends, two records (bench.e2e counts duplicates there)."""
    provider = OutboxProvider("fake", Lane.SMS_TRANSACTIONAL, {"path": str(tmp_path)})
    message = sms(Lane.SMS_TRANSACTIONAL)

    async def twice() -> list[str]:
        first = await provider.deliver(message)
        second = await provider.deliver(message)
        return [first.provider_message_id, second.provider_message_id]

    first, second = asyncio.run(twice())

    folder = tmp_path / Lane.SMS_TRANSACTIONAL.value
    assert sorted(p.name for p in folder.iterdir()) == sorted(["n-1.json", f"n-1.{second}.json"])
    assert json.loads((folder / "n-1.json").read_text())["provider_message_id"] == first
