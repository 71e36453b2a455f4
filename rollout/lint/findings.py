"""What lint reports: issues found by the rules (located by a field path inside one object) and findings
(an issue placed in a file at a line). Paths are tuples of keys and list indexes, printed as
`spec.traffic[0].percent` or `metadata.annotations["autoscaling.knative.dev/min-scale"]`."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

PathPart = str | int
Path = tuple[PathPart, ...]


class Severity(StrEnum):
    ERROR = "error"  # Kubernetes, Knative or the controller would reject it, or it cannot work as written
    WARNING = "warning"  # legal, but probably not what the author meant


@dataclass(frozen=True)
class Issue:
    """A problem in one object, found by a rule. `rule` is a stable id such as `knative/percent-sum`."""

    severity: Severity
    rule: str
    path: Path
    message: str
    hint: str = ""


def error(rule: str, path: Path, message: str, hint: str = "") -> Issue:
    return Issue(Severity.ERROR, rule, path, message, hint)


def warning(rule: str, path: Path, message: str, hint: str = "") -> Issue:
    return Issue(Severity.WARNING, rule, path, message, hint)


@dataclass(frozen=True)
class Finding:
    """An issue placed in a file. `line` and `column` are 1-based (None when unknown); `document` is the
    0-based index of the YAML document in its file; `kind`/`name` identify the object when known."""

    file: str
    line: int | None
    column: int | None
    severity: Severity
    rule: str
    path: str
    message: str
    hint: str = ""
    document: int | None = None
    kind: str | None = None
    name: str | None = None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line or 0, self.column or 0, self.rule, self.path)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(path: Sequence[PathPart]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


_TOKEN = re.compile(r'\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.?([^.\[\]]+)')


def parse_path(text: str) -> Path:
    """The inverse of `format_path` (also reads the paths of rollout.api.load and rollout.knative.traffic)."""
    parts: list[PathPart] = []
    for index, quoted, plain in _TOKEN.findall(text):
        if index:
            parts.append(int(index))
        elif quoted:
            parts.append(str(json.loads(quoted)))
        else:
            parts.append(plain)
    return tuple(parts)
