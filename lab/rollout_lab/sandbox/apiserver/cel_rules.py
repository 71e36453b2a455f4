"""CEL validation rules of structural schemas (`x-kubernetes-validations`), evaluated with cel-python:
`self` is the value at the rule's node and `oldSelf` its previous value on update (transition rules —
those that mention oldSelf — run only when there is a previous value, as in Kubernetes). Kubernetes'
CEL library extensions (quantity, url, ip, list sorting helpers) are not available."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel

from rollout_lab.sandbox.apiserver.resources import Cause
from rollout_lab.sandbox.apiserver.validation import cause

_ENV = celpy.Environment()


@lru_cache(maxsize=512)
def _program(rule: str) -> Any:
    return _ENV.program(_ENV.compile(rule))


def compile_error(rule: str) -> str | None:
    """Why `rule` does not compile, or None."""
    try:
        _program(rule)
    except Exception as err:  # cel-python raises its own error types for parse and check failures
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return None


def _render(value: Any) -> str:
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    if isinstance(value, str):
        return f'"{value}"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def evaluate(rules: list[Any], value: Any, old: Any, path: str) -> list[Cause]:
    """The causes for the rules `value` breaks (a rule that fails to evaluate counts as broken)."""
    causes: list[Cause] = []
    for spec in rules:
        if not isinstance(spec, dict) or not isinstance(spec.get("rule"), str):
            continue
        rule: str = spec["rule"]
        transition = "oldSelf" in rule
        if transition and old is None:
            continue
        field = path
        if spec.get("fieldPath"):
            field = f"{path}{spec['fieldPath']}" if path else str(spec["fieldPath"]).lstrip(".")
        reason = str(spec.get("reason") or "FieldValueInvalid")
        bindings = {"self": value, **({"oldSelf": old} if transition else {})}
        try:
            result = _program(rule).evaluate(json_to_cel(bindings))
        except Exception as err:
            causes.append(
                cause(field, f"Invalid value: {_render(value)}: rule evaluation error: {err}", reason)
            )
            continue
        if isinstance(result, Exception):
            causes.append(
                cause(field, f"Invalid value: {_render(value)}: rule evaluation error: {result}", reason)
            )
        elif not bool(result):
            message = spec.get("message") or f"failed rule: {rule}"
            causes.append(cause(field, f"Invalid value: {_render(value)}: {message}", reason))
    return causes
