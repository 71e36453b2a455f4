"""Decoding of `application/vnd.kubernetes.protobuf` request bodies for the built-in kinds kubectl creates
with typed clients (`kubectl create namespace|configmap|secret`, `kubectl auth can-i`). Responses are always JSON (clients
accept it). Other kinds sent as protobuf answer 415, which is honest: we do not know their messages.

The envelope is the 4-byte magic `k8s\\0` followed by a runtime.Unknown message (1: TypeMeta,
2: raw object bytes); field numbers below are those of Kubernetes' generated.proto files.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from rollout_lab.sandbox.store_api import ApiError, Obj

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

Fields = list[tuple[int, int, Any]]  # (field number, wire type, value: int or bytes)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> Fields:
    """The raw (number, wire type, value) triples of one message."""
    out: Fields = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, wire, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            out.append((number, wire, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            out.append((number, wire, int.from_bytes(data[pos : pos + 8], "little")))
            pos += 8
        elif wire == 5:
            out.append((number, wire, int.from_bytes(data[pos : pos + 4], "little")))
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _string(raw: Any) -> str:
    return bytes(raw).decode()


def _map(entries: list[Any], value: Callable[[Any], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in entries:
        parts = {n: v for n, _, v in fields(entry)}
        out[_string(parts.get(1, b""))] = value(parts.get(2, b""))
    return out


def _time(raw: Any) -> str:
    parts = {n: v for n, _, v in fields(raw)}
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(parts.get(1, 0)))


def _bool(raw: Any) -> bool:
    return bool(raw)


def _bytes_b64(raw: Any) -> str:
    return base64.b64encode(bytes(raw)).decode()


# message name -> field number -> (json name, decoder, repeated, is map)
Spec = dict[int, tuple[str, Any, bool, bool]]
OWNER_REFERENCE: Spec = {
    1: ("kind", _string, False, False),
    3: ("name", _string, False, False),
    4: ("uid", _string, False, False),
    5: ("apiVersion", _string, False, False),
    6: ("controller", _bool, False, False),
    7: ("blockOwnerDeletion", _bool, False, False),
}
OBJECT_META: Spec = {
    1: ("name", _string, False, False),
    2: ("generateName", _string, False, False),
    3: ("namespace", _string, False, False),
    5: ("uid", _string, False, False),
    6: ("resourceVersion", _string, False, False),
    7: ("generation", int, False, False),
    8: ("creationTimestamp", _time, False, False),
    11: ("labels", _string, True, True),
    12: ("annotations", _string, True, True),
    13: ("ownerReferences", OWNER_REFERENCE, True, False),
    14: ("finalizers", _string, True, False),
}
CONFIG_MAP: Spec = {
    1: ("metadata", OBJECT_META, False, False),
    2: ("data", _string, True, True),
    3: ("binaryData", _bytes_b64, True, True),
    4: ("immutable", _bool, False, False),
}
SECRET: Spec = {
    1: ("metadata", OBJECT_META, False, False),
    2: ("data", _bytes_b64, True, True),
    3: ("type", _string, False, False),
    4: ("stringData", _string, True, True),
    5: ("immutable", _bool, False, False),
}
NAMESPACE: Spec = {
    1: ("metadata", OBJECT_META, False, False),
    2: ("spec", {1: ("finalizers", _string, True, False)}, False, False),
    3: ("status", {1: ("phase", _string, False, False)}, False, False),
}
RESOURCE_ATTRIBUTES: Spec = {
    1: ("namespace", _string, False, False),
    2: ("verb", _string, False, False),
    3: ("group", _string, False, False),
    4: ("version", _string, False, False),
    5: ("resource", _string, False, False),
    6: ("subresource", _string, False, False),
    7: ("name", _string, False, False),
}
NON_RESOURCE_ATTRIBUTES: Spec = {1: ("path", _string, False, False), 2: ("verb", _string, False, False)}
# what `kubectl auth can-i` sends
SELF_SUBJECT_ACCESS_REVIEW: Spec = {
    1: ("metadata", OBJECT_META, False, False),
    2: (
        "spec",
        {
            1: ("resourceAttributes", RESOURCE_ATTRIBUTES, False, False),
            2: ("nonResourceAttributes", NON_RESOURCE_ATTRIBUTES, False, False),
        },
        False,
        False,
    ),
}
MESSAGES: dict[tuple[str, str], Spec] = {
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "Secret"): SECRET,
    ("v1", "Namespace"): NAMESPACE,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): SELF_SUBJECT_ACCESS_REVIEW,
}


def _decode(spec: Spec, data: bytes) -> Obj:
    out: Obj = {}
    grouped: dict[int, list[Any]] = {}
    for number, _, value in fields(data):
        grouped.setdefault(number, []).append(value)
    for number, values in grouped.items():
        if number not in spec:
            continue  # fields we do not model (managedFields, selfLink...) are dropped
        name, decoder, repeated, is_map = spec[number]

        def one(raw: Any, decoder: Any = decoder) -> Any:
            return _decode(decoder, raw) if isinstance(decoder, dict) else decoder(raw)

        if is_map:
            out[name] = _map(values, one)
        elif repeated:
            out[name] = [one(v) for v in values]
        else:
            out[name] = one(values[-1])
    return out


def decode(body: bytes) -> Obj:
    """The JSON-like object of a protobuf request body; 400 when malformed, 415 for unknown kinds."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "protobuf body without the k8s\\0 prefix")
    try:
        envelope = {n: v for n, _, v in fields(body[len(MAGIC) :])}
        type_meta = {n: _string(v) for n, _, v in fields(envelope.get(1, b""))}
        api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
        spec = MESSAGES.get((api_version, kind))
        if spec is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the sandbox decodes protobuf bodies only for {', '.join(k for _, k in MESSAGES)}, "
                f"not {api_version}/{kind}; send application/json",
            )
        obj = _decode(spec, envelope.get(2, b""))
    except (ValueError, UnicodeDecodeError, IndexError) as err:
        raise ApiError(400, "BadRequest", f"malformed protobuf body: {err}") from None
    return {"apiVersion": api_version, "kind": kind, **obj}
