"""The contract every provider keeps, as tests that any adapter (ours or a plug-in's) runs.

Subclass :class:`ProviderContract` in a pytest module (the class name starting with ``Test``),
set ``provider_class``, ``lane`` and ``error_tables``, and give three fixtures, against the
adapter's real local fake (never a mock of the adapter):

* ``provider_options``: options that build a working provider (credentials resolved),
* ``message_for``: a callable giving a deliverable message of a lane,
* ``received``: a callable giving how many messages the fake has received so far,

and, where the fake can hold an answer back, ``lost_answer``: options with which a delivery's
request reaches the fake and its answer never comes back (a short ``timeout_seconds``). Without
it that test is skipped.

What is checked: a message of another lane is refused before anything is sent, and a lane of
another channel at construction; ``deliver`` is the base class's (final) method; every option is
declared with its help; a wrong value of a declared option or a missing required one is a
:class:`ConfigurationError` naming the provider and the option; every row of every error table
builds exactly its promised error (reason, ``accepted_unknown``, retry hint kept); a lost answer
is ``accepted_unknown`` (never failed over); secret option values appear in no repr, str or
configuration error.

This module imports pytest: it is for test runs only, never imported by the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import pytest

from providers.error_rules import ErrorRule
from providers.interface import (
    ConfigurationError,
    InvalidRecipientError,
    Lane,
    Message,
    PermanentError,
    Provider,
    ProviderError,
    SuppressionReason,
    TransientError,
)
from providers.options import value_type

MessageFor = Callable[[Lane], Message]
Received = Callable[[], int]
NAME = "contract-under-test"


def _deliver(provider: Provider, message: Message) -> ProviderError | None:
    async def attempt() -> ProviderError | None:
        try:
            await provider.deliver(message)
        except ProviderError as e:
            return e
        finally:
            await provider.close()
        return None

    return asyncio.run(attempt())


def _wrong_value(annotation: Any) -> str | None:
    """A value no option of this type accepts, or None when any text would do."""
    kind = value_type(annotation)
    if kind in (int, float):
        return "not-a-number"
    if kind is bool:
        return "maybe"
    return None


class ProviderContract:
    """The shared contract tests; see the module docstring for what a subclass gives."""

    provider_class: ClassVar[type[Provider]]
    lane: ClassVar[Lane]
    error_tables: ClassVar[Sequence[Mapping[Any, ErrorRule]]] = ()

    @pytest.fixture
    def lost_answer(self) -> Mapping[str, Any]:
        pytest.skip("this provider's fake cannot hold an answer back")

    def build(self, options: Mapping[str, Any], lane: Lane | None = None) -> Provider:
        return self.provider_class(NAME, lane or self.lane, options)

    # ------------------------------------------------------------------ lanes

    def test_deliver_is_the_final_base_method(self) -> None:
        assert self.provider_class.deliver is Provider.deliver

    def test_a_message_of_another_lane_is_refused_before_sending(
        self, provider_options: Mapping[str, Any], message_for: MessageFor, received: Received
    ) -> None:
        other = next(
            lane for lane in Lane if lane != self.lane and lane.channel == self.lane.channel
        )
        before = received()

        error = _deliver(self.build(provider_options), message_for(other))

        assert isinstance(error, PermanentError) and error.code == "lane_mismatch"
        assert received() == before

    def test_a_lane_of_another_channel_is_refused_at_construction(
        self, provider_options: Mapping[str, Any]
    ) -> None:
        if self.provider_class.channel is None:
            pytest.skip("serves every channel")
        other = next(lane for lane in Lane if lane.channel != self.provider_class.channel)
        with pytest.raises(ConfigurationError, match="cannot serve lane"):
            self.build(provider_options, other)

    # ------------------------------------------------------------------ options

    def test_every_option_is_declared_with_its_help(self) -> None:
        fields = self.provider_class.options_schema.model_fields
        assert "rate_limit" in fields
        assert all(info.description for info in fields.values()), "an option without help"

    def test_a_wrong_or_missing_option_is_a_configuration_error_naming_it(
        self, provider_options: Mapping[str, Any]
    ) -> None:
        schema = self.provider_class.options_schema
        cases: list[tuple[str, dict[str, Any]]] = []
        for name, info in schema.model_fields.items():
            wrong = _wrong_value(info.annotation)
            if wrong is not None:
                cases.append((name, {**provider_options, name: wrong}))
            if info.is_required():
                cases.append((name, {k: v for k, v in provider_options.items() if k != name}))
        cases.append(("rate_limit", {**provider_options, "rate_limit": "fast"}))
        for name, options in cases:
            with pytest.raises(ConfigurationError) as caught:
                self.build(options)
            assert NAME in str(caught.value) and name in str(caught.value), str(caught.value)

    def test_secret_values_appear_in_no_repr_str_or_configuration_error(
        self, provider_options: Mapping[str, Any]
    ) -> None:
        schema = self.provider_class.options_schema
        secrets = [
            str(provider_options[n]) for n in schema.secret_names() if provider_options.get(n)
        ]
        provider = self.build(provider_options)
        asyncio.run(provider.close())
        refused = ""
        try:
            self.build({**provider_options, "rate_limit": "fast"})
        except ConfigurationError as e:
            refused = str(e)
        shown = " ".join([repr(provider), str(provider), repr(provider.config), refused])
        for secret in secrets:
            assert secret not in shown

    # ------------------------------------------------------------------ errors

    def test_every_error_row_builds_its_promised_error(self) -> None:
        rows = [rule for table in self.error_tables for rule in table.values()]
        if not rows:
            pytest.skip("no vendor error table (a provider without a vendor, like the outbox)")
        for rule in rows:
            error = rule.build("vendor answer", "code", None)
            assert type(error) is rule.error
            if isinstance(error, InvalidRecipientError):
                assert error.reason == (rule.reason or SuppressionReason.INVALID_ADDRESS)
            if isinstance(error, TransientError):
                assert error.accepted_unknown is rule.accepted_unknown
                assert error.retry_after == rule.retry_after
                assert rule.build("again", "code", 7.0).retry_after == 7.0  # the answer wins

    def test_a_lost_answer_is_accepted_unknown(
        self, lost_answer: Mapping[str, Any], message_for: MessageFor
    ) -> None:
        error = _deliver(self.build(lost_answer), message_for(self.lane))

        assert isinstance(error, TransientError) and error.accepted_unknown is True
