"""PromQL text that no value can change: escaping of label values and the custom query templates.

Custom metric queries are PromQL with `{{ variable }}` placeholders (whitespace inside the braces optional).
Each placeholder is filled according to where it sits in the template, found by a small PromQL lexer:

- inside a double- or single-quoted string: the value is escaped for that string (backslash, the quote,
  newline and control characters, and every non-ASCII character as a \\u escape, since PromQL rejects some
  raw ones such as U+FFFD); when the string follows `=~` or `!~` the value is first escaped as an RE2
  literal, so `.` or `|` in a value match only themselves;
- inside a backtick (raw) string: nothing can be escaped there, so a value holding a backtick, a carriage
  return or U+FFFD is rejected (other values cannot end the string);
- anywhere else (code or a comment): the value must be a single harmless token, a number or a duration
  such as `5m` (what `{{ interval }}` gives); anything else is rejected with a hint to quote the placeholder.

So no namespace, revision name or other value can end a string, add a matcher or an operator, or turn a
literal into a pattern. Rendering raises TemplateError; `template_problems` lists what is wrong with a
template before any value is known (for `rollout lint`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

VARIABLES: tuple[str, ...] = (
    "namespace",
    "service",
    "revision",
    "stable_revision",
    "canary_revision",
    "interval",
)
"""Variables a custom query may use: the rollout's namespace and service, the revision being measured, the
stable and canary revisions, and the analysis window as a PromQL duration."""

# Variables whose values are names: they belong inside a string literal.
NAME_VARIABLES = frozenset(VARIABLES) - {"interval"}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_BARE_TOKEN = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|(?:[0-9]+(?:ms|s|m|h|d|w|y))+)")
_REGEX_META = frozenset("\\.+*?()|[]{}^$")
# What a raw (backtick) string cannot carry: its own end, a carriage return (dropped when unquoted) and
# U+FFFD (PromQL's lexer takes it for invalid UTF-8).
_RAW_UNSAFE = ("`", "\r", "\ufffd")


class TemplateError(ValueError):
    """A template that cannot be rendered safely, with the reason and the fix."""


class Context(Enum):
    CODE = "code"
    COMMENT = "comment"
    DOUBLE_QUOTED = "double-quoted string"
    SINGLE_QUOTED = "single-quoted string"
    RAW = "backtick string"


@dataclass(frozen=True)
class Placeholder:
    """One `{{ name }}` in a template: where it is and in what PromQL context."""

    name: str
    start: int
    end: int
    context: Context
    regex: bool  # inside a string that is the right-hand side of =~ or !~
    line: int
    column: int


# ---------------------------------------------------------------------------------------------- escaping


def regex_literal(value: str) -> str:
    """`value` as an RE2 pattern matching exactly that text (Go's regexp.QuoteMeta)."""
    return "".join("\\" + c if c in _REGEX_META else c for c in value)


def escape_string_body(value: str, quote: str) -> str:
    """`value` escaped for the inside of a PromQL string opened with `quote` (`"` or `'`).

    Only the matching quote is escaped: PromQL (like Go) rejects `\\'` inside double quotes and `\\"` inside
    single quotes. Non-ASCII characters become \\u / \\U escapes, which PromQL decodes back to the same text.
    """
    if quote not in ('"', "'"):
        raise ValueError(f"not a PromQL quote: {quote!r}")
    out: list[str] = []
    for ch in value:
        code = ord(ch)
        if ch in ("\\", quote):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x80:
            out.append(ch)
        elif 0xD800 <= code <= 0xDFFF:
            raise TemplateError(f"value {value!r} holds a lone surrogate (U+{code:04X}), which is not text")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def string_literal(value: str) -> str:
    """A double-quoted PromQL string whose value is exactly `value`."""
    return '"' + escape_string_body(value, '"') + '"'


def regex_alternation(values: Iterable[str]) -> str:
    """A double-quoted PromQL string holding an RE2 pattern that matches exactly the given values (sorted,
    de-duplicated), for a `label=~...` matcher. An empty set gives a pattern that matches nothing."""
    alternatives = sorted(set(values))
    if not alternatives:
        return string_literal("$^.")  # RE2 has no lookarounds; `$^.` can never match
    return string_literal("|".join(regex_literal(v) for v in alternatives))


def promql_duration(seconds: float) -> str:
    """A PromQL duration for a window length: whole seconds as `300s`, otherwise milliseconds."""
    if seconds <= 0:
        raise ValueError(f"a window must be positive, got {seconds}")
    millis = round(seconds * 1000)
    if millis % 1000 == 0:
        return f"{millis // 1000}s"
    return f"{max(millis, 1)}ms"


# ---------------------------------------------------------------------------------------------- lexing


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def _follows_regex_operator(text: str, quote_index: int) -> bool:
    before = text[:quote_index].rstrip()
    return before.endswith(("=~", "!~"))


def placeholders(template: str) -> list[Placeholder]:
    """Every placeholder of `template` with its PromQL context. Raises TemplateError on a `{{` that does
    not open a well-formed placeholder."""
    found: list[Placeholder] = []
    context = Context.CODE
    regex = False
    i = 0
    n = len(template)
    while i < n:
        if template.startswith("{{", i):
            match = _PLACEHOLDER.match(template, i)
            line, column = _position(template, i)
            if match is None:
                raise TemplateError(
                    f"line {line}, column {column}: `{{{{` does not start a placeholder; "
                    "write `{{ name }}` with one of: " + ", ".join(VARIABLES)
                )
            found.append(
                Placeholder(match.group(1), i, match.end(), context, regex, line, column),
            )
            i = match.end()
            continue
        ch = template[i]
        if context is Context.CODE:
            if ch == "#":
                context = Context.COMMENT
            elif ch in "\"'`":
                context = {
                    '"': Context.DOUBLE_QUOTED,
                    "'": Context.SINGLE_QUOTED,
                    "`": Context.RAW,
                }[ch]
                regex = _follows_regex_operator(template, i)
        elif context is Context.COMMENT:
            if ch == "\n":
                context = Context.CODE
        elif context is Context.RAW:
            if ch == "`":
                context, regex = Context.CODE, False
        else:
            quote = '"' if context is Context.DOUBLE_QUOTED else "'"
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                context, regex = Context.CODE, False
        i += 1
    return found


def template_variables(template: str) -> tuple[str, ...]:
    """Names of the variables `template` uses, in order of first use (known or not)."""
    seen: dict[str, None] = {}
    for p in placeholders(template):
        seen.setdefault(p.name, None)
    return tuple(seen)


def template_problems(template: str) -> list[str]:
    """What is wrong with a template before any value is known: malformed or unknown placeholders, and name
    variables outside a string literal (which no revision or namespace name could ever fill safely)."""
    try:
        found = placeholders(template)
    except TemplateError as exc:
        return [str(exc)]
    problems: list[str] = []
    for p in found:
        where = f"line {p.line}, column {p.column}"
        if p.name not in VARIABLES:
            problems.append(
                f"{where}: unknown variable {{{{ {p.name} }}}}; known variables: {', '.join(VARIABLES)}"
            )
        elif p.name in NAME_VARIABLES and p.context in (Context.CODE, Context.COMMENT):
            problems.append(
                f'{where}: {{{{ {p.name} }}}} must be inside quotes, e.g. label="{{{{ {p.name} }}}}"'
            )
    return problems


# ---------------------------------------------------------------------------------------------- rendering


def _fill(p: Placeholder, value: str) -> str:
    if p.context in (Context.CODE, Context.COMMENT):
        if not _BARE_TOKEN.fullmatch(value):
            raise TemplateError(
                f"line {p.line}, column {p.column}: {{{{ {p.name} }}}} is outside a string literal, where "
                f"only a number or a duration can go, and its value {value!r} is neither; put it in quotes, "
                f'e.g. label="{{{{ {p.name} }}}}"'
            )
        return value
    text = regex_literal(value) if p.regex else value
    if p.context is Context.RAW:
        if any(c in text for c in _RAW_UNSAFE):
            raise TemplateError(
                f"line {p.line}, column {p.column}: the value {value!r} of {{{{ {p.name} }}}} cannot be put "
                "in a backtick string (it holds a backtick, a carriage return or U+FFFD, which a raw string "
                "cannot carry); use double quotes"
            )
        return text
    return escape_string_body(text, '"' if p.context is Context.DOUBLE_QUOTED else "'")


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill every placeholder of `template` with its escaped value. Raises TemplateError for an unknown
    variable, a variable without a value, or a value that cannot be placed safely where it appears."""
    parts: list[str] = []
    last = 0
    for p in placeholders(template):
        if p.name not in VARIABLES:
            raise TemplateError(
                f"line {p.line}, column {p.column}: unknown variable {{{{ {p.name} }}}}; "
                f"known variables: {', '.join(VARIABLES)}"
            )
        if p.name not in values:
            raise TemplateError(f"no value for {{{{ {p.name} }}}}")
        parts.append(template[last : p.start])
        parts.append(_fill(p, values[p.name]))
        last = p.end
    parts.append(template[last:])
    return "".join(parts)


@dataclass(frozen=True)
class TemplateValues:
    """The values a custom query is rendered with for one revision of one rollout."""

    namespace: str
    service: str
    revision: str
    stable_revision: str
    canary_revision: str
    window_seconds: float

    def as_mapping(self) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "service": self.service,
            "revision": self.revision,
            "stable_revision": self.stable_revision,
            "canary_revision": self.canary_revision,
            "interval": promql_duration(self.window_seconds),
        }
