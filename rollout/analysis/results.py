"""Reading the `result` of a Prometheus instant query into plain values.

`decode_answer` decodes the HTTP body itself, compactly: a builtin query over a thousand rollouts answers
tens of thousands of rows (a latency histogram is ~27 rows per revision), and the generic JSON tree of such
an answer (a dict per row, another for its labels, a list and two strings for its value), with
`parse_vector`'s copy on top of it, was the controller's peak memory at scale. Here each well-formed instant-vector row becomes a `Sample` while the JSON is decoded (its label values
shared between rows: a revision's name, the namespace and the bucket edges repeat in every row), so the
tree never exists; anything else stays as decoded, and `parse_vector` judges it as before."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ResultShapeError(ValueError):
    """The answer is not what an instant query of this kind returns."""


@dataclass(frozen=True, slots=True)
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
        if isinstance(item, Sample):  # a row `decode_answer` already read
            rows.append(item)
            continue
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


class _CompactRows:
    """json.loads' object_hook: an instant-vector row becomes a Sample as soon as it is decoded; label values
    are shared across the answer. Called innermost first, so a row's labels arrive before the row."""

    def __init__(self) -> None:
        self._strings: dict[str, str] = {}

    def __call__(self, obj: dict[str, Any]) -> object:
        if len(obj) == 2 and "value" in obj and "metric" in obj:
            labels, pair = obj["metric"], obj["value"]
            if (
                isinstance(labels, dict)
                and _is_pair(pair)
                and all(isinstance(v, str) for v in labels.values())
            ):
                try:
                    return Sample(labels, _number(pair[1]))
                except ResultShapeError:
                    return obj  # parse_vector reports it with the row
        strings = self._strings
        for key, value in obj.items():
            if type(value) is str:
                obj[key] = strings.setdefault(value, value)
        return obj


def decode_answer(body: bytes | str) -> object:
    """The `data.result` of a Prometheus API answer, with instant-vector rows already read as Samples.
    Raises ValueError (not JSON) or KeyError/TypeError (not the API's envelope)."""
    answer = json.loads(body, object_hook=_CompactRows())
    if not isinstance(answer, dict):
        raise TypeError(f"the answer is a {type(answer).__name__}, not the Prometheus API's object")
    data = answer["data"]
    if not isinstance(data, dict):
        raise TypeError(f"`data` is a {type(data).__name__}, not an object")
    return data["result"]
