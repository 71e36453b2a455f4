"""Knative's rules for `spec.traffic` (on a Service or a Route), as pure functions.

Shared by `rollout lint`, the controller (before it writes a traffic plan) and the sandbox (its admission
step stands in for Knative's webhook). Knative enforces these rules in its validating webhook, not in the CRD
schema (see ../shared/knative/crds/README.md); the messages below use Knative's own wording so that what a
user reads from lint, from the sandbox and from a real cluster is the same sentence.

Knative formats the errors of one object as `apis.FieldError`: errors with the same message and details are
merged (their paths joined with ", "), paths and errors are sorted, and each line reads
`{message}: {path}, {path}` (followed by a newline and the details, when there are any). The webhook then
prefixes `validation failed: ` and the API server prefixes `admission webhook "<name>" denied the request: `.
`format_field_errors` and `webhook_denial_message` reproduce that.

Each finding also carries `field`, our canonical JSON path (`spec.traffic[1].tag`), because Knative reports
some paths in a different shape (a bad tag is `spec.traffic.tag[1]` in its message).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

# The only header routing Knative has (feature flag `tag-header-based-routing: Enabled` in config-features).
TAG_HEADER = "Knative-Serving-Tag"
# The name under which Knative's validating webhook is registered (the API server quotes it on denial).
VALIDATION_WEBHOOK = "validation.webhook.serving.knative.dev"

ENTRY_FIELDS: frozenset[str] = frozenset(
    {"tag", "revisionName", "configurationName", "latestRevision", "percent", "url"}
)
_ENTRY_TYPES: dict[str, tuple[type, str]] = {
    "tag": (str, "string"),
    "revisionName": (str, "string"),
    "configurationName": (str, "string"),
    "url": (str, "string"),
    "latestRevision": (bool, "boolean"),
    "percent": (int, "integer"),
}


class TrafficEntry(TypedDict, total=False):
    """One entry of spec.traffic or status.traffic (Knative's TrafficTarget)."""

    tag: str
    revisionName: str
    configurationName: str
    latestRevision: bool
    percent: int
    url: str


FindingSource = Literal["webhook", "schema"]


@dataclass(frozen=True)
class FieldFinding:
    """One problem in a traffic block.

    `field` is our canonical path (e.g. `spec.traffic[1].tag`); `message` is Knative's wording;
    `knative_paths` are the path(s) as Knative's webhook prints them (default: `field`); `details` is the
    optional second line Knative prints; `hint` says how to fix it. `source` is "webhook" for Knative's
    webhook rules and "schema" for what the API server's CRD schema handles (wrong types, unknown fields,
    which a real API server rejects or prunes before the webhook sees the object).
    """

    field: str
    message: str
    hint: str
    rule: str
    source: FindingSource = "webhook"
    knative_paths: tuple[str, ...] = ()
    details: str = ""

    @property
    def paths(self) -> tuple[str, ...]:
        return self.knative_paths or (self.field,)

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (fix: {self.hint})"


# --- name checks, with the wording of k8s.io/apimachinery/pkg/util/validation -------------------------

_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_RE = re.compile(f"^{_DNS1035_FMT}$")
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Kubernetes' RegexError: note the double space it puts between examples."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def dns1035_label_errors(value: str) -> list[str]:
    """Why `value` is not a DNS-1035 label (empty list when it is one)."""
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1035_RE.match(value):
        errors.append(_regex_error(_DNS1035_MSG, _DNS1035_FMT, "my-name", "abc-123"))
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """Why `value` is not a Kubernetes qualified name (what Knative requires of revision names)."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errors = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        elif len(prefix) > 253 or not _DNS1123_SUBDOMAIN_RE.match(prefix):
            errors.append("prefix part must be a lowercase RFC 1123 subdomain")
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME_RE.match(name):
        errors.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


def _go_list(items: Sequence[str]) -> str:
    """How Go's fmt prints a []string: `[a b]`."""
    return "[" + " ".join(items) + "]"


# --- defaulting --------------------------------------------------------------------------------------


def default_traffic(entries: Sequence[Mapping[str, Any]] | None, *, in_service: bool) -> list[TrafficEntry]:
    """Knative's defaulting webhook for a traffic block (copies; never mutates its input).

    A Service without traffic gets `[{latestRevision: true, percent: 100}]` (every new revision takes all
    traffic); a Route without traffic stays empty (and fails validation). Each entry without
    `latestRevision` gets `latestRevision = (revisionName == "")`. `percent` is not defaulted: absent means 0.
    """
    if not entries:
        return [TrafficEntry(latestRevision=True, percent=100)] if in_service else []
    result: list[TrafficEntry] = []
    for entry in entries:
        copied: dict[str, Any] = dict(entry)
        if copied.get("latestRevision") is None:
            copied["latestRevision"] = not copied.get("revisionName")
        result.append(copied)  # type: ignore[arg-type]
    return result


# --- validation --------------------------------------------------------------------------------------


def with_configuration(
    entries: Sequence[Mapping[str, Any]], configuration: str | None
) -> list[dict[str, Any]]:
    """The entries as a standalone Route must hold them: its `latestRevision` entries name the Configuration
    they follow (inside a Service the configuration is implied, so Services pass None)."""
    out = []
    for e in entries:
        entry = dict(e)
        if entry.get("latestRevision") and not entry.get("configurationName") and configuration:
            entry["configurationName"] = configuration
        out.append(entry)
    return out


def validate_traffic(
    entries: Any,
    *,
    in_service: bool,
    field: str = "spec.traffic",
) -> list[FieldFinding]:
    """All problems Knative (webhook, and the CRD schema before it) would report for this traffic block.

    `entries` is the raw user input (spec.traffic of a Service or a Route); defaulting is applied first,
    as Knative's mutating webhook runs before its validating one. `in_service` is True for a Service's
    traffic, where configurationName is implied and forbidden. Returns an empty list when valid.
    """
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        return [
            FieldFinding(
                field=field,
                message=f'{field} in body must be of type array: "{json_type(entries)}"',
                hint="write spec.traffic as a YAML list of entries (each starting with '-')",
                rule="schema-type",
                source="schema",
            )
        ]
    findings: list[FieldFinding] = []
    usable: list[Mapping[str, Any]] = []
    for index, entry in enumerate(entries):
        path = f"{field}[{index}]"
        if not isinstance(entry, Mapping):
            findings.append(
                FieldFinding(
                    field=path,
                    message=f'{path} in body must be of type object: "{json_type(entry)}"',
                    hint="each traffic entry is a mapping such as {revisionName: NAME, percent: 10}",
                    rule="schema-type",
                    source="schema",
                )
            )
            usable.append({})
            continue
        schema_findings = _schema_findings(entry, path)
        findings.extend(schema_findings)
        bad = {f.field.rsplit(".", 1)[-1] for f in schema_findings if f.rule == "schema-type"}
        usable.append({k: v for k, v in entry.items() if k in ENTRY_FIELDS and k not in bad})
    if not entries and in_service:
        return findings  # defaulted to [{latestRevision: true, percent: 100}]: valid
    defaulted = default_traffic(usable, in_service=in_service)
    findings.extend(_webhook_findings(defaulted, in_service=in_service, field=field))
    return findings


def json_type(value: Any) -> str:
    """The JSON Schema type name of a decoded JSON value, as the API server names it in errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _schema_findings(entry: Mapping[str, Any], path: str) -> list[FieldFinding]:
    findings = []
    for key, value in entry.items():
        if key not in ENTRY_FIELDS:
            findings.append(
                FieldFinding(
                    field=f"{path}.{key}",
                    message=f'unknown field "{path}.{key}"',
                    hint=_unknown_field_hint(key),
                    rule="unknown-field",
                    source="schema",
                )
            )
            continue
        expected, type_name = _ENTRY_TYPES[key]
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if value is not None and not ok:
            findings.append(
                FieldFinding(
                    field=f"{path}.{key}",
                    message=f'{path}.{key} in body must be of type {type_name}: "{json_type(value)}"',
                    hint=f"{key} must be a {type_name}"
                    + (" (write 10, not '10%' or 10.5)" if key == "percent" else ""),
                    rule="schema-type",
                    source="schema",
                )
            )
    return findings


def _unknown_field_hint(key: str) -> str:
    allowed = ", ".join(sorted(ENTRY_FIELDS - {"url"}))
    if key in {"path", "domain", "host", "headers", "header"}:
        return (
            f"Knative traffic entries have no {key!r}: routing is by percent, by tag URL, or by the "
            f"{TAG_HEADER} header; custom domains are DomainMapping objects. Allowed fields: {allowed}"
        )
    return f"remove {key!r}; a traffic entry allows only: {allowed}"


def _webhook_findings(
    entries: Sequence[Mapping[str, Any]], *, in_service: bool, field: str
) -> list[FieldFinding]:
    findings: list[FieldFinding] = []
    first_index_of_tag: dict[str, int] = {}
    total = 0
    for index, entry in enumerate(entries):
        path = f"{field}[{index}]"
        findings.extend(_entry_findings(entry, path, in_service=in_service))
        percent = entry.get("percent")
        if isinstance(percent, int):
            total += percent
        tag = entry.get("tag") or ""
        if not tag:
            continue
        label_errors = dns1035_label_errors(tag)
        if label_errors:
            findings.append(
                FieldFinding(
                    field=f"{path}.tag",
                    message=f"invalid value: not a DNS 1035 label: {_go_list(label_errors)}",
                    hint="a tag becomes part of a host name: use lower-case letters, digits and '-', "
                    "start with a letter, at most 63 characters (e.g. 'canary')",
                    rule="tag-dns1035",
                    knative_paths=(f"{field}.tag[{index}]",),
                )
            )
        if tag in first_index_of_tag:
            first = first_index_of_tag[tag]
            findings.append(
                FieldFinding(
                    field=f"{path}.tag",
                    message=f'Multiple definitions for "{tag}"',
                    hint=f"tags must be unique: rename one of the entries {first} and {index}, or merge them",
                    rule="tag-unique",
                    knative_paths=(f"{path}.tag", f"{field}[{first}].tag"),
                )
            )
        else:
            first_index_of_tag[tag] = index
    if total != 100:
        findings.append(
            FieldFinding(
                field=field,
                message=f"Traffic targets sum to {total}, want 100",
                hint="make the percents add up to exactly 100 (an entry without percent counts as 0)",
                rule="percent-sum",
            )
        )
    return findings


def _entry_findings(entry: Mapping[str, Any], path: str, *, in_service: bool) -> list[FieldFinding]:
    findings: list[FieldFinding] = []
    revision = entry.get("revisionName") or ""
    configuration = entry.get("configurationName") or ""
    latest = entry.get("latestRevision")
    if latest is not None and (revision != "") == latest:
        findings.append(
            FieldFinding(
                field=f"{path}.latestRevision",
                message=f'may not set revisionName "{revision}" when latestRevision is {str(latest).lower()}',
                hint=(
                    "remove latestRevision (or set it to false) on an entry pinned to a revisionName"
                    if latest
                    else "set latestRevision: true (or omit it) on an entry without revisionName, "
                    "or name the revision it pins"
                ),
                rule="latest-revision",
            )
        )
    if in_service and configuration:
        findings.append(
            FieldFinding(
                field=f"{path}.configurationName",
                message="must not set the field(s)",
                hint="inside a Service the configuration is implied: use latestRevision: true "
                "(follow the latest ready revision) or revisionName (pin one)",
                rule="configuration-in-service",
            )
        )
    elif revision and configuration:
        findings.append(
            FieldFinding(
                field=f"{path}.revisionName",
                message="expected exactly one, got both",
                hint="an entry names either revisionName (pinned) or configurationName (latest), not both",
                rule="revision-xor-configuration",
                knative_paths=(f"{path}.configurationName", f"{path}.revisionName"),
            )
        )
    elif revision:
        findings.extend(_name_findings(revision, f"{path}.revisionName", "use the revision's metadata.name"))
    elif configuration:
        findings.extend(
            _name_findings(
                configuration, f"{path}.configurationName", "use the Configuration's metadata.name"
            )
        )
    elif not in_service:
        findings.append(
            FieldFinding(
                field=path,
                message="expected exactly one, got neither",
                hint="a Route's entry must name revisionName or configurationName",
                rule="revision-xor-configuration",
                knative_paths=(f"{path}.configurationName", f"{path}.revisionName"),
            )
        )
    percent = entry.get("percent")
    if isinstance(percent, int) and not 0 <= percent <= 100:
        findings.append(
            FieldFinding(
                field=f"{path}.percent",
                message=f"expected 0 <= {percent} <= 100",
                hint="each percent is between 0 and 100",
                rule="percent-range",
            )
        )
    if entry.get("url"):
        findings.append(
            FieldFinding(
                field=f"{path}.url",
                message="must not set the field(s)",
                hint="url is filled in by Knative in status.traffic; remove it from spec",
                rule="url-in-spec",
            )
        )
    return findings


def _name_findings(name: str, field: str, hint: str) -> list[FieldFinding]:
    errors = qualified_name_errors(name)
    if not errors:
        return []
    rule = "revision-name" if field.endswith("revisionName") else "configuration-name"
    return [
        FieldFinding(
            field=field, message=f'invalid key name "{name}"', hint=hint, rule=rule, details=", ".join(errors)
        )
    ]


# --- Knative's error text ----------------------------------------------------------------------------


def format_field_errors(findings: Sequence[FieldFinding]) -> str:
    """The text of Knative's `apis.FieldError.Error()` for these findings: merged, sorted, one per line."""
    merged: dict[tuple[str, str], list[str]] = {}
    for finding in findings:
        paths = merged.setdefault((finding.message, finding.details), [])
        for path in finding.paths:
            if path not in paths:
                paths.append(path)
    lines = []
    for (message, details), paths in sorted(merged.items()):
        line = f"{message}: {', '.join(sorted(paths))}"
        lines.append(f"{line}\n{details}" if details else line)
    return "\n".join(lines)


def webhook_denial_message(findings: Sequence[FieldFinding]) -> str:
    """The message a Kubernetes API server returns when Knative's validating webhook rejects an object."""
    return (
        f'admission webhook "{VALIDATION_WEBHOOK}" denied the request: '
        f"validation failed: {format_field_errors(findings)}"
    )
