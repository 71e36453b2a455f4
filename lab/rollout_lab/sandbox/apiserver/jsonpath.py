"""The subset of Kubernetes JSONPath used by printer columns: `.field`, `['dotted.key']`, `[n]`, `[*]`,
`[a:b]`, and filters `[?(@.path=='value')]` (==, !=, <, >, <=, >=, or bare `@.path` for existence)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Step:
    kind: str  # field, index, wildcard, slice, filter
    key: str = ""
    index: int = 0
    stop: int | None = None
    filter_path: tuple[Step, ...] = ()
    op: str = ""
    literal: Any = None


class JsonPathError(ValueError):
    pass


_FILTER = re.compile(r"^\?\(\s*@((?:\.[^=!<>\s]+|\[[^\]]+\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)$")


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


@lru_cache(maxsize=256)
def parse(path: str) -> tuple[Step, ...]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ".":
            j = i + 1
            while j < len(text) and text[j] not in ".[":
                j += 1
            if j > i + 1:
                name = text[i + 1 : j]
                steps.append(Step("wildcard") if name == "*" else Step("field", name))
            i = j
        elif ch == "[":
            depth, j = 0, i
            while j < len(text):
                if text[j] == "[":
                    depth += 1
                elif text[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(text):
                raise JsonPathError(f"unterminated [ in {path!r}")
            steps.append(_bracket(text[i + 1 : j], path))
            i = j + 1
        else:
            raise JsonPathError(f"unexpected {ch!r} in {path!r}")
    return tuple(steps)


def _bracket(inner: str, path: str) -> Step:
    inner = inner.strip()
    if inner == "*":
        return Step("wildcard")
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return Step("field", inner[1:-1].replace("\\.", "."))
    if inner.startswith("?"):
        m = _FILTER.match(inner)
        if m is None:
            raise JsonPathError(f"unsupported filter {inner!r} in {path!r}")
        sub = parse(m.group(1)) if m.group(1) else ()
        op = m.group(2) or "exists"
        return Step("filter", filter_path=sub, op=op, literal=_literal(m.group(3)) if m.group(3) else None)
    if ":" in inner:
        start, _, stop = inner.partition(":")
        return Step("slice", index=int(start or 0), stop=int(stop) if stop.strip() else None)
    try:
        return Step("index", index=int(inner))
    except ValueError:
        raise JsonPathError(f"unsupported index {inner!r} in {path!r}") from None


def _compare(value: Any, op: str, literal: Any) -> bool:
    if op == "==":
        return bool(value == literal)
    if op == "!=":
        return bool(value != literal)
    try:
        if op == "<":
            return bool(value < literal)
        if op == ">":
            return bool(value > literal)
        if op == "<=":
            return bool(value <= literal)
        return bool(value >= literal)
    except TypeError:
        return False


def _apply(steps: tuple[Step, ...], nodes: list[Any]) -> list[Any]:
    for step in steps:
        nxt: list[Any] = []
        for node in nodes:
            if step.kind == "field":
                if isinstance(node, dict) and step.key in node:
                    nxt.append(node[step.key])
            elif step.kind == "wildcard":
                if isinstance(node, dict):
                    nxt.extend(node.values())
                elif isinstance(node, list):
                    nxt.extend(node)
            elif step.kind == "index":
                if isinstance(node, list) and -len(node) <= step.index < len(node):
                    nxt.append(node[step.index])
            elif step.kind == "slice":
                if isinstance(node, list):
                    nxt.extend(node[step.index : step.stop])
            elif step.kind == "filter" and isinstance(node, list):
                for item in node:
                    found = _apply(step.filter_path, [item])
                    if step.op == "exists":
                        if found:
                            nxt.append(item)
                    elif found and _compare(found[0], step.op, step.literal):
                        nxt.append(item)
        nodes = nxt
    return nodes


def find(path: str, obj: Any) -> list[Any]:
    """Every value `path` selects in `obj` (empty when nothing matches)."""
    return _apply(parse(path), [obj])
