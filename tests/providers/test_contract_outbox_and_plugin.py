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


def test_sends_finishing_together_are_written_together_and_fail_alone(tmp_path: Path) -> None:
    """One trip to a thread for a group's files; a file that cannot be written fails only its
    own send (here: a notification id naming a folder that does not exist)."""
    provider = OutboxProvider("fake", Lane.SMS_TRANSACTIONAL, {"path": str(tmp_path)})
    folder = tmp_path / Lane.SMS_TRANSACTIONAL.value
    blocked = SmsMessage(notification_id="none/n", lane=Lane.SMS_TRANSACTIONAL, to="+1", body="b")
    messages = [
        SmsMessage(notification_id=f"n-{i}", lane=Lane.SMS_TRANSACTIONAL, to="+1", body=f"{i}")
        for i in range(20)
    ]
    trips: list[int] = []
    write_all = provider._writer._write_all

    def counted(items: list[Any]) -> list[BaseException | None]:
        trips.append(len(items))
        return write_all(items)

    provider._writer._write_all = counted  # type: ignore[method-assign]  # counts the trips

    async def together() -> list[Any]:
        await provider.deliver(messages[0])
        return await asyncio.gather(
            *(provider.deliver(m) for m in [*messages[1:], blocked]), return_exceptions=True
        )

    results = asyncio.run(together())

    assert trips == [1, 20]  # the first alone, then the 19 and the blocked one in one trip
    assert all(not isinstance(r, BaseException) for r in results[:-1])
    written = {json.loads((folder / f"n-{i}.json").read_text())["body"] for i in range(20)}
    assert written == {str(i) for i in range(20)}
    assert isinstance(results[-1], FileNotFoundError)  # only that send failed
