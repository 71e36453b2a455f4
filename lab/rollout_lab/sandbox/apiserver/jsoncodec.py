"""Compact JSON for the API server's hot paths (watch events, answers, request bodies): orjson, which is several
times faster than the standard library, with the standard library as the fallback for what orjson refuses
(integers beyond 64 bits, NaN and Infinity in a request), so that what is accepted and how errors read do not
change."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits, a non-string key
        return json.dumps(value, separators=(",", ":")).encode()


def loads(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # accepts what json accepts, raises json's error otherwise
