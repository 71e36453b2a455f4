"""`rollout lint PATH...`: check RolloutPolicies and Knative Services, Routes and Configurations before
they are merged.

Exit status: 0 no errors (warnings alone keep 0 unless --strict), 1 errors found (or warnings with
--strict, or nothing to check without --allow-empty), 2 usage error (a path that does not exist, bad flags).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rollout.lint.discover import discover
from rollout.lint.linter import lint_files
from rollout.lint.report import render_json, render_text
from rollout.lint.yamlload import Limits

EPILOG = """\
Directories are searched recursively for *.yaml and *.yml (hidden directories skipped); `-` reads
standard input. Documents of other kinds are ignored, but YAML that does not parse is reported.
Files larger than 5 MiB, nested deeper than 100 levels, or whose aliases expand beyond 100000 nodes
are refused with an error. Exit status: 0 clean (warnings allowed), 1 errors (or warnings with
--strict, or nothing checked without --allow-empty), 2 usage error. The JSON schema is documented in
rollout/lint/report.py.
"""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "lint",
        help="check RolloutPolicies and Knative Services/Routes/Configurations",
        description="Check RolloutPolicy and Knative Service, Route and Configuration manifests.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to lint (- for stdin)")
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="exit 0 when the paths hold nothing lint checks (default: exit 1, so a CI gate that checked "
        "nothing does not pass)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    found = discover(args.paths)
    if found.missing:
        for path in found.missing:
            print(f"rollout lint: {path}: no such file or directory", file=sys.stderr)
        return 2
    for path, reason in found.unreadable:
        print(f"rollout lint: {path}: cannot list: {reason}", file=sys.stderr)
    if not found.files:
        print("rollout lint: no *.yaml or *.yml files found in the given paths", file=sys.stderr)
    report = lint_files(found.files, Limits())
    empty = report.checked == 0 and not report.findings and not args.allow_empty
    if empty:
        print(
            "rollout lint: nothing was checked: no RolloutPolicy, ClusterMetricSource or Knative Service, "
            "Route or Configuration in the given paths (pass --allow-empty when that is expected)",
            file=sys.stderr,
        )
    failed = report.errors > 0 or (args.strict and report.warnings > 0) or bool(found.unreadable) or empty
    if args.output == "json":
        sys.stdout.write(render_json(report, ok=not failed))
    else:
        sys.stdout.write(render_text(report))
    return 1 if failed else 0
