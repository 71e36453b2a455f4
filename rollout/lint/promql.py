"""Shape checks of custom PromQL templates that need no Prometheus: brackets, braces and parentheses
balance, and string literals end. The placeholders themselves (known variables, quoting, a stray `{{`) are
checked by rollout.api.promql.template_problems, which the RolloutPolicy model applies.

PromQL strings are "double", 'single' (both with backslash escapes) or `raw`; `#` outside a string starts
a comment to the end of the line. Placeholders (as rollout.api.promql finds them) are replaced by a
neutral token before the scan, so the braces of `{{ namespace }}` do not count as label matchers.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollout.api.promql import TemplateError, placeholders

_PAIRS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _PAIRS.items()}


@dataclass(frozen=True)
class TemplateProblem:
    offset: int  # 0-based character offset in the template
    message: str
    hint: str


def template_problems(template: str) -> list[TemplateProblem]:
    """The first structural problem of a PromQL template (a scan cannot trust what follows one)."""
    if not template.strip():
        return [TemplateProblem(0, "the query is empty", "write a PromQL expression that returns one number")]
    try:
        found = placeholders(template)
    except TemplateError as exc:  # a stray `{{`: the model reports it with its position
        return [TemplateProblem(0, str(exc), "write placeholders as {{ name }}")]
    text = template
    for placeholder in found:  # same length, so offsets stay valid
        text = (
            text[: placeholder.start] + "x" * (placeholder.end - placeholder.start) + text[placeholder.end :]
        )
    return _scan(text)


def _scan(text: str) -> list[TemplateProblem]:
    stack: list[tuple[str, int]] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in "\"'`":
            end = _string_end(text, index)
            if end < 0:
                return [
                    TemplateProblem(
                        index,
                        f"string opened with {char} at character {index + 1} never ends",
                        f"close it with {char}",
                    )
                ]
            index = end + 1
            continue
        if char == "#":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline + 1
            continue
        if char in _PAIRS:
            stack.append((char, index))
        elif char in _CLOSERS:
            if not stack or stack[-1][0] != _CLOSERS[char]:
                expected = f"expected {_PAIRS[stack[-1][0]]} first" if stack else "nothing is open"
                return [
                    TemplateProblem(
                        index,
                        f"`{char}` at character {index + 1} closes nothing ({expected})",
                        "balance the brackets",
                    )
                ]
            stack.pop()
        index += 1
    if stack:
        opener, offset = stack[-1]
        return [
            TemplateProblem(
                offset,
                f"`{opener}` at character {offset + 1} is never closed",
                f"add the matching {_PAIRS[opener]}",
            )
        ]
    return []


def _string_end(text: str, start: int) -> int:
    quote = text[start]
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and quote != "`":
            index += 2
            continue
        if char == quote:
            return index
        index += 1
    return -1
