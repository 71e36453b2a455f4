"""Kubernetes objects in YAML documents: which documents are objects, what they are (group, version, kind,
name, namespace), and the metadata checks every object lint knows gets.

A document that is a mapping is an object (one without apiVersion/kind, such as a Helm values file, is
simply not linted). A `kind: List` (or `...List`) document is expanded into its `items`, as kubectl does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollout.lint.findings import Issue, Path, error, warning
from rollout.lint.yamlload import Position, YamlDocument


@dataclass(frozen=True)
class Manifest:
    file: str
    document: YamlDocument
    base: Path  # where the object sits in its document: () or ("items", n) inside a List
    data: Mapping[str, Any]

    @property
    def api_version(self) -> str | None:
        value = self.data.get("apiVersion")
        return value if isinstance(value, str) else None

    @property
    def group(self) -> str:
        version = self.api_version or ""
        return version.rsplit("/", 1)[0] if "/" in version else ""

    @property
    def version(self) -> str:
        return (self.api_version or "").rsplit("/", 1)[-1]

    @property
    def kind(self) -> str | None:
        value = self.data.get("kind")
        return value if isinstance(value, str) else None

    @property
    def metadata(self) -> Mapping[str, Any]:
        value = self.data.get("metadata")
        return value if isinstance(value, Mapping) else {}

    @property
    def name(self) -> str | None:
        value = self.metadata.get("name")
        return value if isinstance(value, str) and value else None

    @property
    def namespace(self) -> str | None:
        value = self.metadata.get("namespace")
        return value if isinstance(value, str) and value else None

    def labels(self, at: Path = ("metadata",)) -> dict[str, str]:
        return _string_map(_get(self.data, (*at, "labels")))

    def annotations(self, at: Path = ("metadata",)) -> dict[str, str]:
        return _string_map(_get(self.data, (*at, "annotations")))

    def locate(self, path: Path) -> Position:
        return self.document.locate((*self.base, *path))


def _get(data: Any, path: Path) -> Any:
    for part in path:
        if isinstance(part, str) and isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def get(data: Any, *path: str | int) -> Any:
    """The value at `path`, or None when any step is missing or of the wrong type."""
    return _get(data, path)


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def objects_in(file: str, document: YamlDocument) -> tuple[list[Manifest], list[Issue]]:
    """The objects of one document (several for a List), and issues with the document's shape."""
    data = document.data
    if data is None:
        return [], []
    if not isinstance(data, Mapping):
        shape = "a list" if isinstance(data, list) else f"the {type(data).__name__} {str(data)[:40]!r}"
        return [], [
            warning(
                "yaml/not-an-object",
                (),
                f"this document is {shape}, not a Kubernetes object; it is not linted",
                "a manifest is a mapping with apiVersion, kind and metadata; is a `key:` colon missing?",
            )
        ]
    kind = data.get("kind")
    items = data.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        found: list[Manifest] = []
        issues: list[Issue] = []
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                found.append(Manifest(file, document, ("items", index), item))
            else:
                issues.append(
                    error(
                        "manifest/list-item",
                        ("items", index),
                        "a List item must be an object",
                        "each item is a manifest with apiVersion and kind",
                    )
                )
        return found, issues
    return [Manifest(file, document, (), data)], []


# -- metadata --------------------------------------------------------------------------------------------

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(_DNS1123_SUBDOMAIN.match(value))


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


def metadata_issues(manifest: Manifest) -> list[Issue]:
    """What the API server rejects in metadata: a missing or malformed name or namespace, and labels or
    annotations that are not maps of strings (an unquoted `min-scale: 3` is a number, not a string)."""
    meta = manifest.data.get("metadata")
    if meta is None:
        return [error("manifest/metadata", ("metadata",), "metadata is missing", "add metadata.name")]
    if not isinstance(meta, Mapping):
        return [
            error("manifest/metadata", ("metadata",), "metadata must be a mapping", "write key: value pairs")
        ]
    issues: list[Issue] = []
    name = meta.get("name")
    if name is None and not meta.get("generateName"):
        issues.append(
            error("manifest/metadata", ("metadata", "name"), "metadata.name is missing", "name the object")
        )
    elif name is not None and not (isinstance(name, str) and is_dns1123_subdomain(name)):
        issues.append(
            error(
                "manifest/metadata",
                ("metadata", "name"),
                f"name {name!r} is not a valid object name",
                "use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
            )
        )
    namespace = meta.get("namespace")
    if namespace is not None and not (isinstance(namespace, str) and _DNS1123_LABEL.match(namespace)):
        issues.append(
            error(
                "manifest/metadata",
                ("metadata", "namespace"),
                f"namespace {namespace!r} is not a valid namespace name",
                "use lower-case letters, digits and '-'",
            )
        )
    issues += string_map_issues(manifest.data, ("metadata",))
    return issues


def string_map_issues(data: Any, at: Path) -> list[Issue]:
    """Labels and annotations under `at` must be maps from strings to strings; label values are limited."""
    issues: list[Issue] = []
    for field in ("labels", "annotations"):
        value = _get(data, (*at, field))
        if value is None:
            continue
        path = (*at, field)
        if not isinstance(value, Mapping):
            issues.append(
                error(
                    "manifest/metadata",
                    path,
                    f"{field} must be a mapping of strings",
                    'write key: "value" pairs',
                )
            )
            continue
        for key, item in value.items():
            if not isinstance(item, str):
                shown = (
                    "null" if item is None else repr(item).lower() if isinstance(item, bool) else repr(item)
                )
                issues.append(
                    error(
                        "manifest/metadata",
                        (*path, key),
                        f"{field[:-1]} values must be strings, got {shown}",
                        f'quote it: {key}: "{shown}"',
                    )
                )
            elif field == "labels" and not is_label_value(item):
                issues.append(
                    error(
                        "manifest/metadata",
                        (*path, key),
                        f"label value {item!r} is not valid",
                        "at most 63 characters: letters, digits, '-', '_' and '.', "
                        "starting and ending with a letter or digit",
                    )
                )
    return issues
