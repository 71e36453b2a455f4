"""Label and field selectors, parsed and matched the way the Kubernetes API server does.

Label selectors: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>n`, `k<n`, joined by
commas. `!=` and `notin` also match objects without the label. Field selectors: `f=v`, `f==v`, `f!=v`
joined by commas, with backslash escapes; which fields exist depends on the resource.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rollout_lab.sandbox.store_api import ApiError, Obj

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_key_error(key: str) -> str | None:
    """Why `key` is not a valid label key (a qualified name with an optional DNS prefix), or None."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (at most 63 characters)"
        )
    return None


def label_value_error(value: str) -> str | None:
    """Why `value` is not a valid label value, or None."""
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
            "'.', and must start and end with an alphanumeric character (at most 63 characters)"
        )
    return None


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # one of: =, !=, in, notin, exists, !exists, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if not present or value is None:
            return False
        try:
            have, want = int(value), int(self.values[0])
        except ValueError:
            return False
        return have > want if self.op == "gt" else have < want


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def exact_pairs(self) -> dict[str, str]:
        """The `k=v` requirements (what an index could use)."""
        return {r.key: r.values[0] for r in self.requirements if r.op == "=" and len(r.values) == 1}


def _bad(selector: str, why: str) -> ApiError:
    return ApiError(400, "BadRequest", f"unable to parse requirement: {why} (in selector {selector!r})")


_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")


def _tokens(selector: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(selector):
        if selector[pos:].strip() == "":
            break
        m = _TOKEN.match(selector, pos)
        if m is None:  # pragma: no cover - the pattern accepts every non-space character
            raise _bad(selector, f"unexpected character at {pos}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_label_selector(selector: str | None) -> LabelSelector:
    """Parse a label selector string; raises ApiError(400 BadRequest) when it is malformed."""
    if selector is None or not selector.strip():
        return LabelSelector(())
    toks = _tokens(selector)
    reqs: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(toks):
            raise _bad(selector, "unexpected end of selector")
        i += 1
        return toks[i - 1]

    def check_key(key: str) -> str:
        if key in ("=", "==", "!=", "!", "(", ")", ",", ">", "<", "in", "notin"):
            raise _bad(selector, f"found {key!r}, expected a label key")
        why = label_key_error(key)
        if why:
            raise _bad(selector, f"invalid label key {key!r}: {why}")
        return key

    def check_value(value: str) -> str:
        why = label_value_error(value)
        if why:
            raise _bad(selector, f"invalid label value {value!r}: {why}")
        return value

    while i < len(toks):
        tok = take()
        if tok == "!":
            reqs.append(Requirement(check_key(take()), "!exists"))
        else:
            key = check_key(tok)
            nxt = toks[i] if i < len(toks) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
            elif nxt in ("=", "==", "!="):
                i += 1
                value = toks[i] if i < len(toks) and toks[i] != "," else ""
                if value:
                    i += 1
                reqs.append(Requirement(key, "!=" if nxt == "!=" else "=", (check_value(value),)))
            elif nxt in (">", "<"):
                i += 1
                value = take()
                if not value.lstrip("-").isdigit():
                    raise _bad(selector, f"for 'gt', 'lt' operators, the value must be an integer: {value}")
                reqs.append(Requirement(key, "gt" if nxt == ">" else "lt", (value,)))
            elif nxt in ("in", "notin"):
                i += 1
                if take() != "(":
                    raise _bad(selector, f"found {toks[i - 1]!r}, expected '('")
                values: list[str] = []
                expect_value = True
                while True:
                    t = take()
                    if t == ")":
                        if expect_value and values:
                            values.append("")
                        break
                    if t == ",":
                        if expect_value:
                            values.append("")
                        expect_value = True
                        continue
                    if not expect_value:
                        raise _bad(selector, f"found {t!r}, expected ',' or ')'")
                    values.append(check_value(t))
                    expect_value = False
                if not values:
                    raise _bad(selector, "for 'in', 'notin' operators, values set can't be empty")
                reqs.append(Requirement(key, nxt, tuple(values)))
            else:
                raise _bad(selector, f"found {nxt!r}, expected one of: in, notin, =, ==, !=, gt, lt")
        if i < len(toks):
            if toks[i] != ",":
                raise _bad(selector, f"found {toks[i]!r}, expected ','")
            i += 1
            if i >= len(toks):
                raise _bad(selector, "found '', expected: identifier after ','")
    return LabelSelector(tuple(reqs))


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...]

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all((fields.get(r.field, "") == r.value) != r.negate for r in self.requirements)

    def exact(self, field: str) -> str | None:
        """The value that `field` must equal, when the selector pins it."""
        for r in self.requirements:
            if r.field == field and not r.negate:
                return r.value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            cur.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if escaped:
        cur.append("\\")
    parts.append("".join(cur))
    return parts


def _unescape(value: str, selector: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise ApiError(400, "BadRequest", f"invalid field selector: invalid escape in {selector!r}")
            out.append(value[i + 1])
            i += 2
            continue
        if ch in ",=":
            raise ApiError(400, "BadRequest", f"invalid field selector: unescaped {ch!r} in {selector!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def parse_field_selector(selector: str | None) -> FieldSelector:
    """Parse a field selector string; raises ApiError(400 BadRequest) when it is malformed."""
    if selector is None or not selector.strip():
        return FieldSelector(())
    reqs: list[FieldRequirement] = []
    for term in _split_unescaped(selector, ","):
        if not term:
            continue
        for op, negate in (("!=", True), ("==", False), ("=", False)):
            idx = _find_unescaped(term, op)
            if idx >= 0:
                field = term[:idx].strip()
                value = _unescape(term[idx + len(op) :], selector)
                reqs.append(FieldRequirement(field, value, negate))
                break
        else:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}: no operator (=, ==, !=)")
    return FieldSelector(tuple(reqs))


def _find_unescaped(term: str, op: str) -> int:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        if term.startswith(op, i):
            return i
        i += 1
    return -1


FieldGetter = Callable[[Obj], Mapping[str, str]]


def check_fields_supported(selector: FieldSelector, supported: frozenset[str], what: str) -> None:
    """Raise 400 BadRequest, as the real server does, for a field the resource does not index."""
    for r in selector.requirements:
        if r.field not in supported:
            raise ApiError(400, "BadRequest", f"field label not supported: {r.field}", {"kind": what})


def object_fields(obj: Obj, extra_paths: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """The field set of an object for field selectors: metadata.name/namespace plus `extra_paths`
    (field label -> path of keys), each rendered as a string ("true"/"false" for booleans)."""
    meta = obj.get("metadata") or {}
    fields = {
        "metadata.name": str(meta.get("name", "")),
        "metadata.namespace": str(meta.get("namespace", "")),
    }
    for label, path in extra_paths.items():
        cur: object = obj
        for key in path:
            cur = cur.get(key) if isinstance(cur, dict) else None
        if isinstance(cur, bool):
            fields[label] = "true" if cur else "false"
        elif cur is not None and not isinstance(cur, dict | list):
            fields[label] = str(cur)
        else:
            fields[label] = ""
    return fields
