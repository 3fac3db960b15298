"""Each provider type's options, declared once as data and parsed by one mechanism.

A provider class names its options model in ``options_schema``: a pydantic model whose fields
are the options, each declared with :func:`option` (type by annotation; default, or required
when there is none; bounds ``gt``/``ge``/``le``; ``secret``; ``help``). ``Provider.__init__``
parses the resolved options through :meth:`ProviderOptions.parse`, so every adapter refuses a
bad value the same way: one :class:`ConfigurationError` that names the provider, its type and
the option (``provider 'ses-main' (ses): timeout_seconds must be a positive number``), which
``notifier providers check`` prints with exit 2. The value itself is never repeated: it may be
a secret.

The schema is also what everything around the adapters reads instead of keeping lists of their
own: the providers-file loader refuses a secret option written literally and leaves a declared
``*_file`` option (a path the adapter opens) alone; ``rate_limit``, an option of every type, has
each type's documented default send rate as its default; the contract harness
(:mod:`providers.contract`) walks the fields.

Rules every type shares: an empty value (``""``, or ``None`` from code) counts as not given, so
an environment variable set to nothing is a missing option, not a blank host; options a model
does not declare are ignored (the loader hands them on unchanged in ``Provider.options``).
Checks that span options (both access keys or neither) are the model's own validators, raising
``ValueError`` with the sentence to show.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Self

import limits
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


class ConfigurationError(Exception):
    """A provider's configuration is incomplete or inconsistent (raised at start-up)."""


def option(
    default: Any = PydanticUndefined,
    *,
    help: str,  # the schema's word for it, as in command-line tools
    secret: bool = False,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    expects: str | None = None,
) -> Any:
    """One option of a schema. Without ``default`` it is required. ``secret`` keeps it out of
    the model's repr and makes the loader refuse it written literally in the providers file;
    ``expects`` overrides the generated "must be ..." phrase."""
    extra: dict[str, Any] = {"secret": secret}
    if expects:
        extra["expects"] = expects
    return Field(
        default, description=help, gt=gt, ge=ge, le=le, repr=not secret, json_schema_extra=extra
    )


RATE = 'a rate such as "100/second"'


def send_rate(default: str | None, why: str) -> Any:
    """The ``rate_limit`` option with a type's default send rate (``why``: where it comes from),
    for a schema to declare in place of the base's."""
    return option(default, help=f"shared send rate of this provider; {why}", expects=RATE)


class ProviderOptions(BaseModel):
    """The options every provider type has; a type's schema derives from it. Its ``rate_limit``
    default is the type's default send rate (None: no shared rate, the vendor's own limits)."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    rate_limit: str | None = send_rate(None, 'in limits notation ("100/second"); none by default')

    @field_validator("rate_limit")
    @classmethod
    def _known_rate(cls, value: str | None) -> str | None:
        if value is not None:
            limits.parse(value)  # ValueError on anything that is not a rate
        return value

    @classmethod
    def parse(cls, provider: str, kind: str, options: Mapping[str, Any]) -> Self:
        """The options of ``provider`` (of type ``kind``), or a ConfigurationError naming the
        first problem."""
        given = {key: value for key, value in options.items() if value not in ("", None)}
        try:
            return cls.model_validate(given)
        except ValidationError as e:
            problem = _problem(cls, e)
        raise ConfigurationError(f"provider {provider!r} ({kind}): {problem}")

    @classmethod
    def secret_names(cls) -> frozenset[str]:
        return frozenset(name for name, info in cls.model_fields.items() if _extra(info, "secret"))

    @classmethod
    def default_rate(cls) -> str | None:
        default = cls.model_fields["rate_limit"].default
        return None if default is None else str(default)


def _problem(schema: type[ProviderOptions], error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    if first["type"] == "missing":
        return f"needs the {name!r} option"
    if name not in schema.model_fields:  # a check across options: its own sentence
        return str(first.get("ctx", {}).get("error", first["msg"]))
    return f"{name} must be {expected(schema.model_fields[name])}"


def expected(info: FieldInfo) -> str:
    """What an option's value must be, in words ("a positive number", "true or false")."""
    phrase = _extra(info, "expects")
    if phrase:
        return str(phrase)
    kind = value_type(info.annotation)
    if typing.get_origin(kind) is Literal:
        choices = [str(choice) for choice in typing.get_args(kind)]
        return ", ".join(choices[:-1]) + " or " + choices[-1]
    if kind is bool:
        return "true or false"
    if kind in (int, float):
        return _number(info, "an integer" if kind is int else "a number")
    return "text"


def _number(info: FieldInfo, noun: str) -> str:
    bounds = _bounds(info)
    low, high = bounds.get("ge"), bounds.get("le")
    if low is not None and high is not None:
        return f"{noun} from {low:g} to {high:g}"
    if bounds.get("gt", -1) >= 0 or (low or 0) >= 1:
        return f"a positive {noun.split()[-1]}"
    if low is not None:
        return f"{noun} of at least {low:g}"
    return noun


def _bounds(info: FieldInfo) -> dict[str, float]:
    """The numeric bounds (``gt``, ``ge``, ``le``) pydantic keeps as annotated-types metadata."""
    found: dict[str, float] = {}
    for constraint in info.metadata:
        for key in ("gt", "ge", "le"):
            value = getattr(constraint, key, None)
            if isinstance(value, int | float):
                found[key] = float(value)
    return found


def value_type(annotation: Any) -> Any:
    """``float | None`` -> ``float``: the type an option's value has when it is given."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)]
        return kinds[0] if len(kinds) == 1 else str
    return annotation


def _extra(info: FieldInfo, key: str) -> Any:
    extra = info.json_schema_extra
    return extra.get(key) if isinstance(extra, dict) else None
