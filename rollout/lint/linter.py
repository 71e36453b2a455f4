"""`rollout lint`'s engine: files -> YAML documents -> objects -> rules -> findings with file and line.

`lint_texts` is pure (named texts in, report out); `lint_files` reads the files first (see
rollout.lint.yamlsource.read_source for the limits). A file that breaks lint itself is reported as a
finding (rule `lint/internal-error`) and the other files are still linted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FsPath

from rollout.api.common import GROUP
from rollout.api.load import TOP_LEVEL_FIELDS, parse_cluster_source, parse_policy
from rollout.lint.crossrefs import POLICY_KIND, cross_issues
from rollout.lint.discover import STDIN
from rollout.lint.findings import Finding, Issue, Severity, error, format_path, parse_path, warning
from rollout.lint.knative_rules import GROUP as KNATIVE_GROUP
from rollout.lint.knative_rules import KINDS as KNATIVE_KINDS
from rollout.lint.knative_rules import knative_issues
from rollout.lint.manifests import Manifest, metadata_issues, objects_in
from rollout.lint.policy_rules import policy_issues
from rollout.lint.yamlload import Limits, YamlProblem, parse_documents
from rollout.lint.yamlsource import decode, read_source

STDIN_NAME = "<stdin>"


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    documents: int = 0
    objects: int = 0
    checked: int = 0  # objects of the kinds lint has rules for (ours and Knative's)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def errors(self) -> int:
        return self.count(Severity.ERROR)

    @property
    def warnings(self) -> int:
        return self.count(Severity.WARNING)


def checked(manifest: Manifest) -> bool:
    """Lint has rules for this object's kind (ours, or a Knative one)."""
    return manifest.group in (GROUP, KNATIVE_GROUP)


def manifest_issues(manifest: Manifest) -> list[Issue]:
    """Every rule that looks at one object."""
    if manifest.group == GROUP:
        if manifest.kind == POLICY_KIND:
            return _policy(manifest)
        if manifest.kind == "ClusterMetricSource":
            return _cluster_source(manifest)
        if manifest.kind == "Rollout":
            return [
                error(
                    "rollout/controller-owned",
                    ("kind",),
                    "Rollout objects are written by the controller, never kept in git",
                    "remove it; act on a rollout with `rollout promote|abort|pause|resume|retry`",
                )
            ]
        return [
            error(
                "rollout/unknown-kind",
                ("kind",),
                f"{GROUP} has no kind {manifest.kind!r}",
                f"teams write {POLICY_KIND} objects, admins ClusterMetricSource objects",
            )
        ]
    if manifest.group == KNATIVE_GROUP:
        if manifest.kind in KNATIVE_KINDS:
            return metadata_issues(manifest) + knative_issues(manifest)
        if manifest.kind == "Revision":
            return [
                warning(
                    "knative/revision-in-git",
                    ("kind",),
                    "Revisions are created by Knative from a Service's or Configuration's template",
                    "keep the Service or Configuration in git, not its Revisions",
                )
            ]
    return []


def _policy(manifest: Manifest) -> list[Issue]:
    issues = metadata_issues(manifest)
    for key in manifest.data:
        if key not in TOP_LEVEL_FIELDS:
            issues.append(
                error(
                    "policy/schema",
                    (str(key),),
                    f"unknown field `{key}`",
                    "spec holds the policy" if key in ("strategy", "analysis") else "remove it",
                )
            )
    policy, problems = parse_policy(manifest.data)
    for problem in problems:
        path = parse_path(problem.path)
        if path[:1] != ("metadata",):  # metadata_issues reported those, with Kubernetes' rules
            issues.append(error("policy/schema", path, problem.message, problem.hint))
    if policy is not None:
        issues += policy_issues(policy, manifest.data)
    return issues


def _cluster_source(manifest: Manifest) -> list[Issue]:
    """An admin's ClusterMetricSource: cluster-scoped, its spec valid."""
    issues: list[Issue] = []
    if manifest.namespace:
        issues.append(
            error(
                "source/namespace",
                ("metadata", "namespace"),
                "a ClusterMetricSource is cluster-scoped and has no namespace",
                "remove metadata.namespace",
            )
        )
    _, problems = parse_cluster_source(manifest.data)
    for problem in problems:
        issues.append(error("source/schema", parse_path(problem.path), problem.message, problem.hint))
    return issues


class _Run:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.report = LintReport()
        self.manifests: list[Manifest] = []
        self.seen: set[tuple[object, ...]] = set()

    def add(self, finding: Finding) -> None:
        key = (finding.file, finding.line, finding.column, finding.rule, finding.path, finding.message)
        if key not in self.seen:
            self.seen.add(key)
            self.report.findings.append(finding)

    def add_problem(self, file: str, problem: YamlProblem) -> None:
        at = problem.position
        self.add(
            Finding(
                file=file,
                line=at.line if at else None,
                column=at.column if at else None,
                severity=problem.severity,
                rule=problem.rule,
                path="",
                message=problem.message,
                hint=problem.hint,
                document=problem.document,
            )
        )

    def add_issue(self, manifest: Manifest, issue: Issue) -> None:
        at = manifest.locate(issue.path)
        self.add(
            Finding(
                file=manifest.file,
                line=at.line,
                column=at.column,
                severity=issue.severity,
                rule=issue.rule,
                path=format_path(issue.path),
                message=issue.message,
                hint=issue.hint,
                document=manifest.document.index,
                kind=manifest.kind,
                name=manifest.name,
            )
        )

    def text(self, file: str, text: str) -> None:
        self.report.files += 1
        try:
            documents, problems = parse_documents(text, self.limits)
            for problem in problems:
                self.add_problem(file, problem)
            self.report.documents += len(documents)
            for document in documents:
                manifests, shape_issues = objects_in(file, document)
                for issue in shape_issues:
                    self.add_issue(Manifest(file, document, (), {}), issue)
                for manifest in manifests:
                    self.report.objects += 1
                    self.report.checked += checked(manifest)
                    self.manifests.append(manifest)
                    for issue in manifest_issues(manifest):
                        self.add_issue(manifest, issue)
        except Exception as exc:  # a bug in lint must not hide the other files' findings
            self.add(
                Finding(
                    file,
                    None,
                    None,
                    Severity.ERROR,
                    "lint/internal-error",
                    "",
                    f"lint failed on this file: {type(exc).__name__}: {exc}",
                    "please report this as a bug of knative-rollout",
                )
            )

    def unreadable(self, file: str, problem: YamlProblem) -> None:
        self.report.files += 1
        self.add_problem(file, problem)

    def finish(self) -> LintReport:
        for manifest, issue in cross_issues(self.manifests):
            self.add_issue(manifest, issue)
        self.report.findings.sort(key=Finding.sort_key)
        return self.report


def lint_texts(texts: Iterable[tuple[str, str]], limits: Limits | None = None) -> LintReport:
    """Lint named YAML texts together (cross-document rules see all of them)."""
    run = _Run(limits or Limits())
    for name, text in texts:
        run.text(name, text)
    return run.finish()


def lint_files(files: Sequence[str], limits: Limits | None = None) -> LintReport:
    """Lint files (`-` is standard input) together."""
    limits = limits or Limits()
    run = _Run(limits)
    for given in files:
        name = STDIN_NAME if given == STDIN else given
        if given == STDIN:
            raw = sys.stdin.buffer.read(limits.max_file_bytes + 1)
            text, problem = (
                (None, _stdin_too_large(limits)) if len(raw) > limits.max_file_bytes else decode(raw)
            )
        else:
            text, problem = read_source(FsPath(given), limits)
        if text is None:
            assert problem is not None
            run.unreadable(name, problem)
        else:
            run.text(name, text)
    return run.finish()


def _stdin_too_large(limits: Limits) -> YamlProblem:
    return YamlProblem(
        Severity.ERROR,
        "yaml/too-large",
        f"standard input is larger than {limits.max_file_bytes} bytes",
        "lint the files instead",
    )
