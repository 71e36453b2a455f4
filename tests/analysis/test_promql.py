"""Template rendering and escaping, without a server (tests/analysis/test_prometheus_real.py sends the same
attempts to a real Prometheus)."""

from __future__ import annotations

import re

import pytest

from rollout.api.promql import (
    Context,
    TemplateError,
    TemplateValues,
    escape_string_body,
    placeholders,
    promql_duration,
    regex_alternation,
    regex_literal,
    render_template,
    string_literal,
    template_problems,
    template_variables,
)

VALUES = TemplateValues("shop", "web", "web-00002", "web-00001", "web-00002", 300.0).as_mapping()


def test_renders_every_variable_with_optional_whitespace() -> None:
    template = (
        'sum(rate(x{ns="{{namespace}}", svc="{{ service }}", rev="{{  revision  }}", '
        's="{{stable_revision}}", c="{{ canary_revision }}"}[{{interval}}]))'
    )
    assert render_template(template, VALUES) == (
        'sum(rate(x{ns="shop", svc="web", rev="web-00002", s="web-00001", c="web-00002"}[300s]))'
    )


def test_variables_are_listed_in_order_of_first_use() -> None:
    template = '{{ revision }} {{interval}} "{{ revision }}" {{ nope }}'
    assert template_variables(template) == ("revision", "interval", "nope")


def test_unknown_variable_is_an_error_at_render_time() -> None:
    with pytest.raises(TemplateError, match=r"unknown variable \{\{ target \}\}.*known variables"):
        render_template('x{a="{{ target }}"}', VALUES)


def test_missing_value_is_an_error() -> None:
    with pytest.raises(TemplateError, match="no value"):
        render_template('x{a="{{ revision }}"}', {})


@pytest.mark.parametrize("template", ['x{a="{{ revision }"}', "{{}}", "{{ 1x }}", "{{ a b }}"])
def test_malformed_placeholder(template: str) -> None:
    with pytest.raises(TemplateError, match="does not start a placeholder"):
        placeholders(template)


def test_problems_for_lint() -> None:
    template = 'x{a="{{ revision }}"} / y{b="{{ target }}"} offset {{ namespace }}'
    problems = template_problems(template)
    assert len(problems) == 2
    assert "unknown variable {{ target }}" in problems[0]
    assert "{{ namespace }} must be inside quotes" in problems[1]
    assert template_problems('x{a="{{ revision }}"}[{{ interval }}]') == []
    assert "does not start" in template_problems("{{ oops")[0]


def test_contexts() -> None:
    template = (
        'a{x="{{revision}}", y=~"{{revision}}", z!~\'{{revision}}\', w=`{{revision}}`} '
        "# {{interval}}\n[{{interval}}]"
    )
    found = [(p.context, p.regex) for p in placeholders(template)]
    assert found == [
        (Context.DOUBLE_QUOTED, False),
        (Context.DOUBLE_QUOTED, True),
        (Context.SINGLE_QUOTED, True),
        (Context.RAW, False),
        (Context.COMMENT, False),
        (Context.CODE, False),
    ]


def test_quotes_and_escapes_inside_strings_do_not_confuse_the_lexer() -> None:
    # An escaped quote does not end the string; a quote of the other kind is plain text.
    template = 'a{x="say \\"hi\\" it\'s {{revision}}"} + b{y=\'"\' } + {{ interval }}'
    kinds = [p.context for p in placeholders(template)]
    assert kinds == [Context.DOUBLE_QUOTED, Context.CODE]


@pytest.mark.parametrize(
    ("value", "double", "single"),
    [
        ('a"b', 'a\\"b', 'a"b'),
        ("a'b", "a'b", "a\\'b"),
        ("a\\b", "a\\\\b", "a\\\\b"),
        ("l1\nl2\r\t", "l1\\nl2\\r\\t", "l1\\nl2\\r\\t"),
        ("\x00\x1f\x7f", "\\x00\\x1f\\x7f", "\\x00\\x1f\\x7f"),
        ("\u00e9\ufffd\U0001f600", "\\u00e9\\ufffd\\U0001f600", "\\u00e9\\ufffd\\U0001f600"),
    ],
)
def test_string_escaping(value: str, double: str, single: str) -> None:
    assert escape_string_body(value, '"') == double
    assert escape_string_body(value, "'") == single


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(TemplateError, match="surrogate"):
        escape_string_body("a\ud800", '"')


@pytest.mark.parametrize(
    "value",
    ['"} or vector(1) #', "}[5m]) or on() vector(1)", 'x"}\n or vector(1)', '\\"', "'\"`\\"],
)
def test_injection_cannot_close_a_double_quoted_string(value: str) -> None:
    rendered = render_template('x{a="{{ revision }}"}', {"revision": value})
    # The rendered text is x{a="<body>"} with every quote in the body escaped.
    body = rendered[len('x{a="') : -len('"}')]
    assert re.fullmatch(r'(?:[^"\\\n]|\\.)*', body), body


@pytest.mark.parametrize("value", ["a.b", "a|b", "(x)", "x*", "^$", "[a-z]", "a{2}", "a+?", "\\d"])
def test_regex_metacharacters_are_escaped_in_regex_matchers_only(value: str) -> None:
    regex = render_template('x{a=~"{{ revision }}"}', {"revision": value})
    plain = render_template('x{a="{{ revision }}"}', {"revision": value})
    assert regex == 'x{a=~"' + escape_string_body(regex_literal(value), '"') + '"}'
    assert plain == 'x{a="' + escape_string_body(value, '"') + '"}'
    assert re.fullmatch(regex_literal(value), value)  # RE2 and Python agree on these escapes


@pytest.mark.parametrize("value", ["5m", "300s", "1h30m", "250ms", "42", "0.5"])
def test_bare_tokens_allowed_outside_strings(value: str) -> None:
    assert render_template("rate(x[{{ interval }}])", {"interval": value}) == f"rate(x[{value}])"


@pytest.mark.parametrize("value", ["web-00001", "5m]) or vector(1", "1 + 1", "", "5m\n", "-1", "1e3"])
def test_other_values_refused_outside_strings(value: str) -> None:
    with pytest.raises(TemplateError, match="outside a string literal"):
        render_template("rate(x[{{ interval }}])", {"interval": value})


def test_newline_in_a_comment_is_refused() -> None:
    with pytest.raises(TemplateError):
        render_template("x # {{ revision }}", {"revision": "a\nor vector(1)"})


@pytest.mark.parametrize("value", ["a`b", "a\rb", "a\ufffdb"])
def test_raw_strings_refuse_what_they_cannot_hold(value: str) -> None:
    with pytest.raises(TemplateError, match="backtick string"):
        render_template("x{a=`{{ revision }}`}", {"revision": value})


def test_raw_string_takes_other_values_verbatim_and_regex_escaped() -> None:
    assert render_template("x{a=`{{revision}}`}", {"revision": 'a"b\\c'}) == 'x{a=`a"b\\c`}'
    assert render_template("x{a=~`{{revision}}`}", {"revision": "a.b"}) == "x{a=~`a\\.b`}"


def test_regex_alternation_and_literals() -> None:
    assert regex_alternation(["b", "a.b", "b"]) == '"a\\\\.b|b"'
    assert string_literal('he said "hi"') == '"he said \\"hi\\""'
    empty = regex_alternation([])
    assert re.fullmatch(empty.strip('"'), "") is None  # matches nothing, not even the empty label


@pytest.mark.parametrize(
    ("seconds", "text"), [(300, "300s"), (60.0, "60s"), (0.25, "250ms"), (90.5, "90500ms")]
)
def test_promql_duration(seconds: float, text: str) -> None:
    assert promql_duration(seconds) == text


def test_promql_duration_rejects_non_positive() -> None:
    with pytest.raises(ValueError):
        promql_duration(0)
