"""A structural check of PromQL expressions: balanced brackets, known series, known labels.

Not a parser: promtool is the real check where it is installed. This catches what matters for
this project's files: a misspelt or invented metric name, a label the metric does not carry,
an unknown function.
"""

from __future__ import annotations

import re

from ._files import METRICS, TARGET_LABELS, series_names

FUNCTIONS = frozenset(
    {
        "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp_max",
        "clamp_min", "count_over_time", "delta", "deriv", "floor", "histogram_quantile",
        "idelta", "increase", "irate", "label_replace", "last_over_time", "max_over_time",
        "min_over_time", "predict_linear", "rate", "resets", "round", "scalar", "sort",
        "sort_desc", "sum_over_time", "time", "timestamp", "vector",
    }
)  # fmt: skip
AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile"}
)
KEYWORDS = frozenset(
    {"by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right",
     "bool", "offset"}
)  # fmt: skip
# Series Prometheus creates itself for every target.
SYNTHETIC_SERIES = frozenset({"up"})

STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^{}]*)\}")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*,?')
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
RANGE = re.compile(r"\[[^\[\]]*\]")
IDENTIFIER = re.compile(r"(?<![0-9a-zA-Z_:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)")


def check(expr: str) -> set[str]:
    """Problems found in `expr` (empty when it passes); the metrics it uses are in `metrics()`."""
    problems: set[str] = set()
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    for char in STRING.sub('""', expr):
        if char in pairs:
            stack.append(pairs[char])
        elif char in pairs.values() and (not stack or stack.pop() != char):
            problems.add(f"unbalanced {char!r}")
    if stack:
        problems.add("unclosed bracket")

    names = series_names()
    used = metrics(expr)
    labels = set(TARGET_LABELS) | {"le"}
    for metric in used:
        labels |= METRICS[metric][1]

    for match in SELECTOR.finditer(expr):
        name, body = match.group(1), match.group(2)
        rest = MATCHER.sub("", body).strip()
        if rest:
            problems.add(f"cannot read label matchers {body!r}")
        for label in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"', body):
            if name in names:
                allowed = METRICS[names[name]][1] | TARGET_LABELS
                if label not in allowed:
                    problems.add(f"{name} has no label {label!r}")
            elif name in SYNTHETIC_SERIES and label not in TARGET_LABELS:
                problems.add(f"{name} has no label {label!r}")

    for _word, group in GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in group.split(","))):
            if label not in labels:
                problems.add(f"grouping by {label!r}, which no metric here carries")

    stripped = STRING.sub('""', expr)
    stripped = GROUPING.sub(" ", stripped)
    stripped = re.sub(r"\{[^{}]*\}", " ", stripped)
    stripped = RANGE.sub(" ", stripped)
    for word in IDENTIFIER.findall(stripped):
        if word in names or word in SYNTHETIC_SERIES:
            continue
        if word in FUNCTIONS or word in AGGREGATIONS or word in KEYWORDS:
            continue
        if word in {"e", "inf", "Inf", "nan", "NaN"}:
            continue
        problems.add(f"unknown name {word!r}")
    return problems


def metrics(expr: str) -> set[str]:
    """The service metrics an expression reads (histogram series mapped to their metric)."""
    names = series_names()
    found = set(re.findall(r"\bnotifier_[a-zA-Z0-9_]+", STRING.sub('""', expr)))
    return {names[name] for name in found if name in names}


def unknown_series(expr: str) -> set[str]:
    names = series_names()
    found = set(re.findall(r"\bnotifier_[a-zA-Z0-9_]+", STRING.sub('""', expr)))
    return {name for name in found if name not in names}
