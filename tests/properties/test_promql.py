"""No value can change a custom query's structure: rendered with any namespace, service or revision text,
a template lexes (by a reference lexer written here from PromQL's, i.e. Go's, string rules) to the same
tokens as with harmless values, and every string literal decodes to exactly the text the author wrote
around the value; inside a regex matcher the value matches only itself."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from rollout.api.promql import TemplateError, TemplateValues, render_template

TEMPLATES = (
    'sum(rate(http_requests_total{namespace="{{ namespace }}", revision=\'{{ revision }}\', code=~"5.."}'
    "[{{ interval }}]))",
    'sum(rate(x{rev=~"{{ revision }}"}[{{interval}}])) / sum(rate(y{svc=`{{ service }}`}[{{ interval }}]))',
    "histogram_quantile(0.99, sum by (le) (rate(h_bucket{ns!~'{{ namespace }}-.*', "
    'c="{{canary_revision}}-x"}[5m]))) # {{ interval }}',
)
NAMES = ("namespace", "service", "revision", "stable_revision", "canary_revision")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


class Bad(Exception):
    pass


def _escape(q: str, i: int, quote: str) -> tuple[str, int]:
    """Go's strconv rules for the escape at q[i] (a backslash); the decoded text and the next index."""
    c = q[i + 1 : i + 2]
    if c in _SIMPLE:
        return _SIMPLE[c], i + 2
    if c == quote:
        return quote, i + 2
    for lead, width, base in (("x", 2, 16), ("u", 4, 16), ("U", 8, 16)):
        if c == lead:
            digits = q[i + 2 : i + 2 + width]
            if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise Bad(f"bad \\{lead} escape")
            return chr(int(digits, base)), i + 2 + width
    if re.fullmatch(r"[0-7]{3}", q[i + 1 : i + 4]):
        return chr(int(q[i + 1 : i + 4], 8)), i + 4
    raise Bad(f"unknown escape \\{c}")


def lex(q: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(q):
        c = q[i]
        if c.isspace():
            i += 1
        elif c == "#":
            end = q.find("\n", i)
            out.append(("comment", ""))
            i = len(q) if end < 0 else end
        elif c in "\"'":
            buf, i = [], i + 1
            while True:
                if i >= len(q) or q[i] == "\n":
                    raise Bad("unterminated string")
                if q[i] == "\\":
                    text, i = _escape(q, i, c)
                    buf.append(text)
                elif q[i] == c:
                    i += 1
                    break
                else:
                    buf.append(q[i])
                    i += 1
            out.append(("str", "".join(buf)))
        elif c == "`":
            end = q.find("`", i + 1)
            if end < 0:
                raise Bad("unterminated raw string")
            out.append(("str", q[i + 1 : end]))
            i = end + 1
        else:
            m = re.match(r"[A-Za-z0-9_:.]+", q[i:])
            token = m.group() if m else c
            out.append(("tok", token))
            i += len(token)
    return out


def values(**names: str) -> TemplateValues:
    n = {k: names.get(k, "a") for k in NAMES}
    return TemplateValues(window_seconds=300.0, **n)


name_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


@given(st.sampled_from(TEMPLATES), st.fixed_dictionaries(dict.fromkeys(NAMES, name_text)))
@example(TEMPLATES[0], {**dict.fromkeys(NAMES, "a"), "namespace": 'x", evil="1'})
@example(TEMPLATES[1], {**dict.fromkeys(NAMES, "a"), "revision": "a|.*"})
@example(TEMPLATES[1], {**dict.fromkeys(NAMES, "a"), "service": "a` or vector(1) #"})
def test_no_value_changes_the_structure_of_a_query(template: str, names: dict[str, str]) -> None:
    harmless = lex(render_template(template, values().as_mapping()))
    try:
        rendered = render_template(template, values(**names).as_mapping())
    except TemplateError:
        # only a value that a backtick string cannot carry is refused
        raw = names["service"] if "`{{ service }}`" in template else ""
        assert any(ch in raw for ch in "`\r\ufffd"), names
        return
    tokens = lex(rendered)
    assert [k for k, _ in tokens] == [k for k, _ in harmless]
    assert [t for t in tokens if t[0] != "str"] == [t for t in harmless if t[0] != "str"]
    strings = [text for kind, text in tokens if kind == "str"]
    if template is TEMPLATES[0]:
        assert strings[:2] == [names["namespace"], names["revision"]]
    elif template is TEMPLATES[1]:
        assert re.fullmatch(strings[0], names["revision"])
        assert not re.fullmatch(strings[0], names["revision"] + "x")
        assert strings[1] == names["service"]
    else:
        assert re.fullmatch(strings[0], names["namespace"] + "-anything")
        assert not re.fullmatch(strings[0], "x" + names["namespace"] + "-")
        assert strings[1] == names["canary_revision"] + "-x"


@given(st.text(max_size=12))
@example("5m) or vector(1")
@example("1e3")
def test_outside_a_string_only_a_number_or_a_duration_goes(text: str) -> None:
    try:
        rendered = render_template("rate(x[{{ interval }}])", {"interval": text})
    except TemplateError:
        return
    assert [t for _, t in lex(rendered)] == ["rate", "(", "x", "[", text, "]", ")"]
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)?|([0-9]+(ms|s|m|h|d|w|y))+", text)
