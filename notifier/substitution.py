"""Templates that are only text and ``{{ name }}`` substitutions, rendered without Jinja.

Why: intake's usual body (``"Thanks, {{ name }}"``) rendered by Jinja builds a template context
and a generator per field, a visible share of the API event loop's CPU per notification
(bench/README.md, "Direct send paths"). Such a template's output is fixed by its parsed tree:
its literal text, and each named value of the data as Jinja writes it (``str``, or markupsafe's
``escape`` with autoescape; the environment has no ``finalize``). So it is rendered here from
the tree's parts, by :func:`notifier.rendering` only. Any other template, and a name the data
lacks (Jinja would resolve a global or raise for the undefined value), is left to Jinja:
:func:`substitute` then returns None. ``tests/unit/test_substitution.py`` compares both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import nodes
from markupsafe import escape

Parts = tuple[tuple[bool, str], ...]  # (is a name, the literal text or the name)


def parts_of(tree: nodes.Template) -> Parts | None:
    """The template's text and names in order, when it is nothing else."""
    parts: list[tuple[bool, str]] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append((False, child.data))
            elif isinstance(child, nodes.Name) and child.ctx == "load":
                parts.append((True, child.name))
            else:
                return None
    return tuple(parts)


def substitute(parts: Parts, data: Mapping[str, Any], html: bool) -> str | None:
    """The rendered text, or None when a name is not in ``data`` (Jinja's to answer)."""
    out: list[str] = []
    for is_name, text in parts:
        if not is_name:
            out.append(text)
        elif text not in data:
            return None
        else:
            value = data[text]
            out.append(str(escape(value)) if html else str(value))
    return "".join(out)
