"""Template rendering: Jinja2 sandboxed, strict about undefined variables, bounded, with redaction.

A missing personalisation value is the caller's error now (422), not a failure later. Fields
named in ``sensitive`` are rendered twice: for delivery with their values, for everything that is
stored or shown with :data:`REDACTED` in their place.

Rendering is bounded three ways, so that no template can take intake down for other callers:

- **Output**: every field is rendered through ``Template.generate()`` and counted while it is
  produced; rendering stops as soon as a field passes its maximum (the string over the limit is
  never built).
- **Operators**: ``**``, ``*``, ``+`` and ``%`` are intercepted and refuse results that would be
  huge (a 10,000-bit number, a string longer than the field may be) before computing them.
- **CPU and memory**: a template that is *plain* (only substitutions, attribute and item lookups,
  a whitelist of linear filters, conditions) renders in-process: its cost is proportional to its
  output, which is bounded. Anything else (loops, macros, calls, arithmetic, ...) renders in a
  :class:`notifier.render_pool.RenderPool` worker process with a wall-clock deadline (killed when
  it passes) and an address-space limit, at a lower CPU priority than intake.

Every template problem is a :class:`NotifierError` naming the field: ``template_error`` (syntax,
runtime error, forbidden construct, over a bound), ``missing_personalisation``, or
``body_too_long`` when the rendered text of a field is longer than its maximum.
``include``, ``extends`` and ``import`` are refused: a notification's template is self-contained.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from notifier.errors import ErrorCode, NotifierError, field_error
from notifier.redaction import REDACTED
from notifier.substitution import Parts, parts_of, substitute

if TYPE_CHECKING:
    from notifier.render_pool import RenderPool

DEFAULT_MAX_CHARS = 1_000_000  # a field without its own maximum
MAX_INT_BITS = 10_000  # about 3,000 decimal digits: enough for any amount, date or code
MAX_FORMAT_WIDTH = 1_000  # '%1000000d' % 1 would build a megabyte from nothing
_FORBIDDEN = (nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)
_FORMAT_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")

# filters whose output is at most a small multiple of their input, costing time linear in it
_PLAIN_FILTERS = frozenset(
    {
        "upper",
        "lower",
        "title",
        "capitalize",
        "trim",
        "e",
        "escape",
        "default",
        "d",
        "striptags",
        "length",
        "count",
        "first",
        "last",
        "int",
        "float",
        "string",
        "round",
        "abs",
        "urlencode",
        "safe",
        "tojson",
        "truncate",
        "wordcount",
    }
)
_PLAIN_TESTS = frozenset(
    {
        "defined",
        "undefined",
        "none",
        "number",
        "string",
        "true",
        "false",
        "boolean",
        "integer",
        "float",
        "lower",
        "upper",
        "eq",
        "ne",
        "equalto",
    }
)
_PLAIN_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.Getattr,
    nodes.Getitem,
    nodes.If,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Concat,
    nodes.Filter,
    nodes.Test,
)


class _Bounded(SandboxedEnvironment):
    """The sandbox plus bounds on the operators that can build huge values from tiny sources."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        if abs(left).bit_length() * right > MAX_INT_BITS:
            raise SecurityError(f"the result of ** would exceed {MAX_INT_BITS} bits")
    elif operator == "*":
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise SecurityError(f"the result of * would exceed {MAX_INT_BITS} bits")
        for seq, times in ((left, right), (right, left)):
            sized = isinstance(seq, (str, list, tuple)) and isinstance(times, int)
            if sized and len(seq) * times > DEFAULT_MAX_CHARS:
                raise SecurityError("the result of * would be longer than any field may be")
    elif (
        operator == "+"
        and isinstance(left, (str, list, tuple))
        and isinstance(right, (str, list, tuple))
    ):
        if len(left) + len(right) > DEFAULT_MAX_CHARS:
            raise SecurityError("the result of + would be longer than any field may be")
    elif operator == "%" and isinstance(left, str):
        for width, precision in _FORMAT_WIDTH.findall(left):
            for number in (width, precision):
                if number == "*" or (number and int(number) > MAX_FORMAT_WIDTH):
                    raise SecurityError(f"format widths are limited to {MAX_FORMAT_WIDTH}")


_OPTIONS: dict[str, Any] = {"undefined": jinja2.StrictUndefined, "keep_trailing_newline": True}
_env = _Bounded(autoescape=False, **_OPTIONS)
_html_env = _Bounded(autoescape=True, **_OPTIONS)


@dataclass(frozen=True)
class Compiled:
    template: jinja2.Template
    plain: bool  # safe to render in-process (see the module docstring)
    parts: Parts | None = None  # only text and names: rendered without Jinja (substitution)


def check_source(field_name: str, source: str, html: bool = False) -> Compiled:
    """Parse ``source`` once (cached): a syntax error or a forbidden construct is a 422 now."""
    try:
        return _compile(source, html)
    except jinja2.TemplateSyntaxError as e:
        raise field_error(
            ErrorCode.TEMPLATE_ERROR,
            field_name,
            f"{field_name} is not a valid template (line {e.lineno}): {e.message}",
        ) from e
    except _ForbiddenConstruct as e:
        raise field_error(ErrorCode.TEMPLATE_ERROR, field_name, f"{field_name}: {e}") from e
    except (RecursionError, MemoryError) as e:  # a pathologically nested source
        raise field_error(
            ErrorCode.TEMPLATE_ERROR, field_name, f"{field_name} is nested too deeply to parse"
        ) from e


class _ForbiddenConstruct(Exception):
    pass


_CACHE_SIZE = 4096
_cache: dict[tuple[str, bool], Compiled] = {}


def _compile(source: str, html: bool) -> Compiled:
    """Compiled once per process (parsing a 2 KB template can take 20 ms: it is worth keeping)."""
    compiled = _cache.get((source, html))
    if compiled is None:
        compiled = _compile_new(source, html)
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[(source, html)] = compiled
    return compiled


def _compile_new(source: str, html: bool) -> Compiled:
    env = _html_env if html else _env
    tree = env.parse(source)
    for node in tree.find_all(_FORBIDDEN):
        name = type(node).__name__.lower().replace("fromimport", "import")
        raise _ForbiddenConstruct(
            f"{{% {name} %}} is not allowed: a template must be self-contained"
        )
    return Compiled(env.from_string(tree), _is_plain(tree), parts_of(tree))


def _is_plain(tree: nodes.Node) -> bool:
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _PLAIN_NODES):
            return False
        if isinstance(node, nodes.Filter) and node.name not in _PLAIN_FILTERS:
            return False
        if isinstance(node, nodes.Test) and node.name not in _PLAIN_TESTS:
            return False
        if isinstance(node, nodes.Filter | nodes.Test) and (node.dyn_args or node.dyn_kwargs):
            return False
    return True


def known_plain(fields: Mapping[str, str | None]) -> bool:
    """True when every templated field is already compiled and plain: rendering them costs
    microseconds, so the API may do it on its event loop. A source seen for the first time is
    compiled on a worker thread (compiling can take milliseconds)."""
    for name, source in fields.items():
        if source is not None and "{" in source:
            compiled = _cache.get((source, name == "html"))
            if compiled is None or not compiled.plain:
                return False
    return True


def is_plain(fields: Mapping[str, str | None]) -> bool:
    """True when every field renders in-process (cheaply and boundedly): no worker needed."""
    return all(source is None or _plain_field(name, source) for name, source in fields.items())


def _plain_field(name: str, source: str) -> bool:
    return "{" not in source or check_source(name, source, name == "html").plain


# --------------------------------------------------------------------------- one job


@dataclass(frozen=True)
class Job:
    """What a render needs, as plain picklable data (it may cross to a worker process)."""

    fields: dict[str, str]
    data: dict[str, Any]
    masked: dict[str, Any] | None  # the data with sensitive values redacted, if any
    max_chars: dict[str, int]


def run_job(job: Job) -> tuple[dict[str, str], dict[str, str]]:
    """Render every field with the data (and with the masked data): (content, redacted)."""
    content: dict[str, str] = {}
    redacted: dict[str, str] = {}
    for name, source in job.fields.items():
        limit = job.max_chars.get(name, DEFAULT_MAX_CHARS)
        content[name], redacted[name] = _render_pair(name, source, job.data, job.masked, limit)
    return content, redacted


def _render_pair(
    name: str, source: str, data: Mapping[str, Any], masked: Mapping[str, Any] | None, limit: int
) -> tuple[str, str]:
    """One field rendered with the data and with the masked data: (content, redacted)."""
    text = _render_field(name, source, data, limit)
    return text, (_render_field(name, source, masked, limit) if masked is not None else text)


def _render_field(name: str, source: str, data: Mapping[str, Any], limit: int) -> str:
    if "{" not in source:  # no template syntax: nothing to render
        text = source
    else:
        compiled = check_source(name, source, name == "html")
        substituted = (
            substitute(compiled.parts, data, name == "html") if compiled.parts is not None else None
        )
        try:
            text = (
                substituted
                if substituted is not None
                else _generate(compiled.template, data, name, limit)
            )
        except NotifierError:
            raise
        except jinja2.UndefinedError as e:
            raise field_error(
                ErrorCode.MISSING_PERSONALISATION,
                "data",
                f"{name} uses a value missing from data: {e.message}",
            ) from e
        except SecurityError as e:
            raise field_error(ErrorCode.TEMPLATE_ERROR, name, f"{name} is not allowed: {e}") from e
        except RecursionError as e:
            raise field_error(ErrorCode.TEMPLATE_ERROR, name, f"{name} recurses too deeply") from e
        except MemoryError as e:
            raise field_error(
                ErrorCode.TEMPLATE_ERROR, name, f"{name} needs too much memory"
            ) from e
        except Exception as e:
            raise field_error(
                ErrorCode.TEMPLATE_ERROR,
                name,
                f"{name} could not be rendered: {type(e).__name__}: {str(e)[:200]}",
            ) from e
    if len(text) > limit:
        raise too_long(name, limit)
    return text


def _generate(template: jinja2.Template, data: Mapping[str, Any], name: str, limit: int) -> str:
    parts: list[str] = []
    size = 0
    for chunk in template.generate(**data):
        size += len(chunk)
        if size > limit:
            raise too_long(name, limit)
        parts.append(chunk)
    return "".join(parts)


def too_long(name: str, limit: int) -> NotifierError:
    return field_error(
        ErrorCode.BODY_TOO_LONG, name, f"{name} renders to more than {limit} characters"
    )


# --------------------------------------------------------------------------- the entry point


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
    fields: Mapping[str, str | None],
    data: Mapping[str, Any],
    sensitive: frozenset[str],
    *,
    max_chars: Mapping[str, int] | None = None,
    pool: RenderPool | None = None,
    timeout: float | None = None,
    owner: str | None = None,
) -> Rendered:
    """Render each template field (name -> source) with ``data``; ``html`` escapes.

    Plain templates render here; the others in ``pool`` (the process-wide default pool when
    none is given) within ``timeout`` seconds (the pool's own deadline when None), counted
    against ``owner``'s share of the pool."""
    masked = redacted_data(data, sensitive) if sensitive else None
    limits = dict(max_chars or {})
    content: dict[str, Any] = {}
    redacted: dict[str, Any] = {}
    started = time.monotonic()
    for name, source in fields.items():
        if source is None:
            continue
        if _plain_field(name, source):  # here, without building a job (intake's hot path)
            limit = limits.get(name, DEFAULT_MAX_CHARS)
            content[name], redacted[name] = _render_pair(name, source, data, masked, limit)
            continue
        # one job per field: a deadline or a crash is then reported on the right field
        from notifier.render_pool import default_pool

        job = Job(fields={name: source}, data=dict(data), masked=masked, max_chars=limits)
        left = None if timeout is None else timeout - (time.monotonic() - started)
        done = (pool or default_pool()).run(job, left, owner)
        content[name], redacted[name] = done[0][name], done[1][name]
    return Rendered(content=content, redacted=redacted)
