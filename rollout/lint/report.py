"""How `rollout lint` prints its findings.

Text (for people): one line per finding, sorted by file and line, then a summary line:

    policies/std.yaml:14:9: error: spec.strategy.canary.steps[1].weight: weight 5 is not above ... (hint) [policy/schema]
    2 errors, 1 warning in 3 files (5 objects)

JSON (`--output json`, for bots) — a stable schema, version 1; fields are only ever added:

    {
      "version": 1,
      "summary": {"files": int, "documents": int, "objects": int,
                  "errors": int, "warnings": int, "ok": bool},
      "findings": [
        {"file": str,              # as given on the command line ("<stdin>" for -)
         "line": int | null,       # 1-based; null when the problem has no place (e.g. unreadable file)
         "column": int | null,     # 1-based
         "document": int | null,   # 0-based index of the YAML document in the file
         "kind": str | null, "name": str | null,   # the object, when known
         "severity": "error" | "warning",
         "rule": str,              # stable id, e.g. "knative/percent-sum", "policy/deadline", "yaml/syntax"
         "path": str,              # field path in the object, e.g. "spec.traffic[0].percent"; "" if none
         "message": str,           # what is wrong
         "hint": str}              # how to fix it ("" when the message says it all)
      ]
    }

`ok` is true when the exit status is 0 (no errors; with --strict, no warnings either).
"""

from __future__ import annotations

import json
from typing import Any

from rollout.lint.findings import Finding
from rollout.lint.linter import LintReport

JSON_VERSION = 1


def finding_line(finding: Finding) -> str:
    place = finding.file
    if finding.line is not None:
        place += f":{finding.line}"
        if finding.column is not None:
            place += f":{finding.column}"
    text = f"{place}: {finding.severity}: "
    if finding.path:
        text += f"{finding.path}: "
    text += finding.message
    if finding.hint:
        text += f" ({finding.hint})"
    return f"{text} [{finding.rule}]"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(report: LintReport) -> str:
    return (
        f"{_plural(report.errors, 'error')}, {_plural(report.warnings, 'warning')} in "
        f"{_plural(report.files, 'file')} ({_plural(report.objects, 'object')})"
    )


def render_text(report: LintReport) -> str:
    lines = [finding_line(f) for f in report.findings]
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def to_json(report: LintReport, *, ok: bool) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "summary": {
            "files": report.files,
            "documents": report.documents,
            "objects": report.objects,
            "errors": report.errors,
            "warnings": report.warnings,
            "ok": ok,
        },
        "findings": [
            {
                "file": f.file,
                "line": f.line,
                "column": f.column,
                "document": f.document,
                "kind": f.kind,
                "name": f.name,
                "severity": str(f.severity),
                "rule": f.rule,
                "path": f.path,
                "message": f.message,
                "hint": f.hint,
            }
            for f in report.findings
        ],
    }


def render_json(report: LintReport, *, ok: bool) -> str:
    return json.dumps(to_json(report, ok=ok), indent=2) + "\n"
