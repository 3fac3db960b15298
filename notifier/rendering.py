"""Template rendering: Jinja2 sandboxed, strict about undefined variables, with redaction.

A missing personalisation value is the caller's error now (422), not a failure later. Fields
named in ``sensitive`` are rendered twice: for delivery with their values, for everything that is
stored or shown with :data:`REDACTED` in their place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from notifier.errors import ErrorCode, field_error

REDACTED = "[redacted]"

_env = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)
_html_env = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=True, keep_trailing_newline=True
)


@lru_cache(maxsize=4096)
def _compile(source: str, html: bool) -> jinja2.Template:
    return (_html_env if html else _env).from_string(source)


def render_field(
    field_name: str, source: str, data: Mapping[str, Any], *, html: bool = False
) -> str:
    if "{" not in source:  # no template syntax: nothing to render
        return source
    try:
        return _compile(source, html).render(**data)
    except jinja2.UndefinedError as e:
        raise field_error(
            ErrorCode.MISSING_PERSONALISATION,
            "data",
            f"{field_name} uses a value missing from data: {e.message}",
        ) from e
    except jinja2.TemplateError as e:
        raise field_error(
            ErrorCode.TEMPLATE_ERROR, field_name, f"{field_name} is not a valid template: {e}"
        ) from e


def redacted_data(data: Mapping[str, Any], sensitive: frozenset[str]) -> dict[str, Any]:
    return {k: (REDACTED if k in sensitive else v) for k, v in data.items()}


@dataclass(frozen=True)
class Rendered:
    """Content to deliver, and the same content as it may be stored and shown."""

    content: dict[str, Any]
    redacted: dict[str, Any]

    @property
    def has_secrets(self) -> bool:
        return self.content != self.redacted


def render_content(
    fields: Mapping[str, str | None], data: Mapping[str, Any], sensitive: frozenset[str]
) -> Rendered:
    """Render each template field (name -> source) with ``data``; ``html`` escapes."""
    masked = redacted_data(data, sensitive)
    content: dict[str, Any] = {}
    redacted: dict[str, Any] = {}
    for name, source in fields.items():
        if source is None:
            continue
        is_html = name == "html"
        content[name] = render_field(name, source, data, html=is_html)
        redacted[name] = (
            render_field(name, source, masked, html=is_html) if sensitive else content[name]
        )
    return Rendered(content=content, redacted=redacted)
