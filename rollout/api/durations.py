"""Durations as users write them in policies: Go/Kubernetes style strings such as `30s`, `1m30s`, `2h`,
`500ms`. Parsed to seconds (float) and written back in the canonical short form."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo, WithJsonSchema
from pydantic.config import JsonDict

from rollout.api.common import field_error

_UNIT_SECONDS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
MAX_DURATION_SECONDS = 366 * 24 * 3600.0
# Validation context key: set when validating what users wrote (see rollout.api.load).
WIRE = "wire"


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """Seconds in a duration string. Raises DurationError with a message saying what a valid one looks like."""
    # no stripping, and a full match: the API server checks the CRD's pattern on the text as written, so
    # " 30s" or "30s\n" accepted here would pass lint and be refused by the cluster
    value = text
    if not _DURATION_RE.fullmatch(value):
        raise DurationError(
            f"{text!r} is not a duration: write a number followed by a unit (ms, s, m, h), "
            "for example '30s', '1m30s' or '2h'"
        )
    seconds = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _PART_RE.findall(value))
    if seconds > MAX_DURATION_SECONDS:
        raise DurationError(f"{text!r} is longer than a year; use a shorter duration")
    return seconds


def format_duration(seconds: float) -> str:
    """Canonical form: `1h30m`, `45s`, `1.5s`, `250ms`; zero is `0s`."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:g}ms"
    out = []
    whole = int(seconds)
    frac = seconds - whole
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        out.append(f"{hours}h")
    if minutes:
        out.append(f"{minutes}m")
    if secs or frac > 1e-9 or not out:
        sec_value = secs + frac
        out.append(f"{round(sec_value, 3):g}s")
    return "".join(out)


def _coerce(value: Any, info: ValidationInfo) -> float:
    if isinstance(value, bool):
        raise DurationError("a duration must be a string such as '30s', not a boolean")
    if isinstance(value, (int, float)):
        # Python code may pass seconds; on the wire (YAML/JSON from users) a bare number is ambiguous.
        if not (info.context or {}).get(WIRE):
            if value < 0:
                raise DurationError("a duration cannot be negative")
            return float(value)
        raise DurationError(
            f"{value!r} has no unit: write it as a string with a unit, for example '{value}s' or '{value}m'"
        )
    if isinstance(value, str):
        return parse_duration(value)
    raise DurationError(f"a duration must be a string such as '30s', got {type(value).__name__}")


Duration = Annotated[
    float,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]
"""A duration field: seconds in Python, a string such as `30s` in YAML/JSON."""


def at_most(seconds: float) -> JsonDict:
    """CRD schema extras bounding a Duration field, checked by the API server (CEL) before the models see it."""
    text = format_duration(seconds)
    return {
        "x-kubernetes-validations": [
            {"rule": f"duration(self) <= duration('{text}')", "message": f"must be at most {text}"}
        ]
    }


def check_at_most(seconds: float, maximum: float, what: str, at: tuple[int | str, ...], hint: str) -> None:
    """The models' side of `at_most`: a duration outside (0, maximum] is the field error of `at`."""
    if not 0 < seconds <= maximum:
        raise field_error(f"{what} must be above 0 and at most {maximum:g}s", at, hint)
