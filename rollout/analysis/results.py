"""Reading the `result` of a Prometheus instant query (JSON already decoded) into plain values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


class ResultShapeError(ValueError):
    """The answer is not what an instant query of this kind returns."""


@dataclass(frozen=True)
class Sample:
    """One row of an instant vector."""

    labels: Mapping[str, str]
    value: float


def _number(raw: object) -> float:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ResultShapeError(f"sample value {raw!r} is not a number")
    try:
        return float(raw)
    except ValueError as exc:
        raise ResultShapeError(f"sample value {raw!r} is not a number") from exc


def _is_pair(result: object) -> bool:
    return (
        isinstance(result, list)
        and len(result) == 2
        and isinstance(result[0], int | float)
        and not isinstance(result[0], bool)
    )


def parse_vector(result: object) -> list[Sample]:
    """The rows of an instant vector. Raises ResultShapeError for a scalar, a string or a range vector."""
    if _is_pair(result):
        raise ResultShapeError(
            "the query returned a single number where a vector grouped by revision is needed"
        )
    if not isinstance(result, list):
        raise ResultShapeError(f"unexpected result of type {type(result).__name__}")
    rows: list[Sample] = []
    for item in result:
        if not isinstance(item, dict):
            raise ResultShapeError(f"unexpected row {item!r}")
        if "values" in item:
            raise ResultShapeError("the query returned a range vector; an instant vector is needed")
        metric = item.get("metric", {})
        pair = item.get("value")
        if not isinstance(metric, dict) or not _is_pair(pair):
            raise ResultShapeError(f"unexpected row {item!r}")
        assert isinstance(pair, list)
        labels = {str(k): str(v) for k, v in metric.items()}
        rows.append(Sample(labels, _number(pair[1])))
    return rows


def parse_single_number(result: object) -> float | None:
    """The one number of a scalar or one-row vector; None for an empty vector or NaN (no data, such as
    0/0 with no traffic). Raises ResultShapeError for several rows, strings and range vectors."""
    if _is_pair(result):
        assert isinstance(result, list)
        if isinstance(result[1], str) and not _looks_numeric(result[1]):
            raise ResultShapeError("the query returned a string; it must return one number")
        value = _number(result[1])
    else:
        rows = parse_vector(result)
        if not rows:
            return None
        if len(rows) > 1:
            raise ResultShapeError(
                f"the query returned {len(rows)} series; it must return one number (aggregate with sum(), "
                "max() or similar)"
            )
        value = rows[0].value
    return None if math.isnan(value) else value


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
