"""Text-and-names templates rendered without Jinja give exactly Jinja's output, and anything
else is still Jinja's (notifier/substitution.py)."""

from __future__ import annotations

import pytest

from notifier import rendering
from notifier.errors import NotifierError
from notifier.substitution import parts_of, substitute

VALUES = [
    "Ada",
    "<b>Ada & Grace</b>",
    "",
    "\u00e9t\u00e9 \U0001f600",
    0,
    42,
    -1.5,
    1e100,
    True,
    False,
    None,
    [1, "<a>", None],
    {"k": "<v>"},
]

SOURCES = [
    "Thanks, {{ name }}",
    "{{ name }}",
    "{{name}}{{ name }}!",
    "a {{- name -}} b\n",
    "{# note #}Hi {{ name }}{% raw %}{{ raw }}{% endraw %}",
    "line one\n{{ name }}\nline two\n",
]


def _jinja(source: str, data: dict, html: bool) -> str:
    env = rendering._html_env if html else rendering._env
    return "".join(env.from_string(source).generate(**data))


@pytest.mark.parametrize("html", [False, True])
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_the_same_text_as_jinja(source, value, html) -> None:
    env = rendering._html_env if html else rendering._env
    parts = parts_of(env.parse(source))
    assert parts is not None
    data = {"name": value}
    assert substitute(parts, data, html) == _jinja(source, data, html)
    field = "html" if html else "body"
    rendered = rendering.render_content({field: source}, data, frozenset())
    assert rendered.content[field] == _jinja(source, data, html)


@pytest.mark.parametrize(
    "source",
    [
        "{{ name | upper }}",
        "{{ user.name }}",
        "{{ items[0] }}",
        "{% if name %}x{% endif %}",
        "{{ 'a' ~ name }}",
        "{{ 1 + 2 }}",
    ],
)
def test_anything_else_is_left_to_jinja(source) -> None:
    assert parts_of(rendering._env.parse(source)) is None


def test_a_name_missing_from_data_is_jinja_s_answer() -> None:
    parts = parts_of(rendering._env.parse("{{ range }} {{ name }}"))
    assert parts is not None and substitute(parts, {"name": "Ada"}, False) is None
    # Jinja's global, rendered by Jinja as before
    out = rendering.render_content({"body": "{{ range }}"}, {}, frozenset())
    assert out.content["body"] == _jinja("{{ range }}", {}, False)
    with pytest.raises(NotifierError) as missing:
        rendering.render_content({"body": "Hi {{ name }}"}, {}, frozenset())
    assert missing.value.code.value == "missing_personalisation"


def test_the_length_limit_still_holds() -> None:
    with pytest.raises(NotifierError) as long:
        rendering.render_content(
            {"body": "{{ name }}"}, {"name": "x" * 50}, frozenset(), max_chars={"body": 10}
        )
    assert long.value.code.value == "body_too_long"


def test_redaction_still_applies() -> None:
    out = rendering.render_content(
        {"body": "code {{ otp }}"}, {"otp": "123456"}, frozenset({"otp"})
    )
    assert out.content["body"] == "code 123456" and "123456" not in out.redacted["body"]
