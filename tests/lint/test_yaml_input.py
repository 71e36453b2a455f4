"""The YAML loader: values with their lines, and every kind of hostile input refused with a finding,
never a traceback, in bounded time."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rollout.lint.findings import Severity
from rollout.lint.linter import lint_files
from rollout.lint.yamlload import Limits, Position, parse_documents
from rollout.lint.yamlsource import decode, read_source
from tests.lint.helpers import lint_text, rules

SERVICE = """\
# leading comment
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - image: example/hello
  traffic:
    - percent: 90
      latestRevision: true
    - {revisionName: other-00001, percent: 20}
"""


def test_positions_point_at_keys_and_list_items() -> None:
    [doc], problems = parse_documents(SERVICE)
    assert problems == []
    assert doc.start == Position(2, 1)
    assert doc.locate(("kind",)) == Position(3, 1)
    assert doc.locate(("spec", "traffic", 0)) == Position(12, 7)
    assert doc.locate(("spec", "traffic", 0, "latestRevision")) == Position(13, 7)
    assert doc.locate(("spec", "traffic", 1, "percent")) == Position(14, 35)
    # a path that is not written falls back to its nearest written parent
    assert doc.locate(("spec", "traffic", 1, "tag")) == Position(14, 7)


def test_findings_carry_the_line_of_the_offending_field() -> None:
    report = lint_text(SERVICE)
    by_path = {f.path: f for f in report.findings}
    assert by_path["spec.traffic"].line == 11 and by_path["spec.traffic"].rule == "knative/percent-sum"
    assert by_path["spec.traffic[1].revisionName"].line == 14
    assert by_path["spec.traffic[1].revisionName"].rule == "knative/foreign-revision"


def test_lines_are_counted_per_file_across_documents() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\n---\n" + SERVICE
    report = lint_text(text)
    percent_sum = [f for f in report.findings if f.rule == "knative/percent-sum"]
    assert [(f.line, f.document) for f in percent_sum] == [(14, 1)]


def test_scalars_follow_yaml_1_1_like_kubernetes_but_timestamps_stay_text() -> None:
    [doc], _ = parse_documents("a: yes\nb: 0x10\nc: 1.5\nd: ~\ne: 2026-01-02\nf: '10'\ng: 1_000\n")
    assert doc.data == {"a": True, "b": 16, "c": 1.5, "d": None, "e": "2026-01-02", "f": "10", "g": 1000}


def test_merge_keys_are_expanded_and_explicit_keys_win() -> None:
    [doc], problems = parse_documents("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n")
    assert problems == []
    assert doc.data["use"] == {"x": 1, "y": 3}


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("a: 1\nb: 2\na: 3\n", "yaml/duplicate-key"),
        ("? [a, b]\n: 1\n", "yaml/complex-key"),
        ("a: [1, 2\n", "yaml/syntax"),
        ("a: b: c\n", "yaml/syntax"),
        ("a: \x07\n", "yaml/syntax"),
        ("a: *nowhere\n", "yaml/syntax"),
        ("a: !!int twelve\n", "yaml/syntax"),
        ("a: !Ref thing\n", "yaml/unknown-tag"),
        ("a: !!python/object:os.system ls\n", "yaml/unknown-tag"),
        ("a: &x [1, *x]\n", "yaml/recursive-alias"),
        ("- just\n- a list\n", "yaml/not-an-object"),
        ("just a string\n", "yaml/not-an-object"),
        ("42\n", "yaml/not-an-object"),
    ],
)
def test_malformed_yaml_is_a_finding(text: str, rule: str) -> None:
    report = lint_text(text)
    assert rule in rules(report), report.findings
    assert "lint/internal-error" not in rules(report)
    assert all(f.line is not None for f in report.findings)


def test_duplicate_key_names_both_lines() -> None:
    [finding] = lint_text("a: 1\nb: 2\na: 3\n").findings
    assert finding.line == 3 and "first on line 1" in finding.message


def test_null_and_empty_documents_are_skipped_quietly() -> None:
    report = lint_text("---\n---\n# only a comment\n---\n~\n")
    assert report.findings == []


def test_custom_tag_does_not_crash_and_value_is_read() -> None:
    [doc], problems = parse_documents("a: !Secret abc\nb: !!set {x, y}\n")
    assert doc.data == {"a": "abc", "b": {"x": None, "y": None}}
    assert {p.rule for p in problems} == {"yaml/unknown-tag"}


def billion_laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        refs = ",".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly() -> None:
    started = time.monotonic()
    report = lint_text(billion_laughs(10))  # 10**10 nodes once expanded
    assert time.monotonic() - started < 2
    [finding] = report.findings
    assert finding.rule == "yaml/alias-budget" and finding.severity == Severity.ERROR
    assert finding.line is not None


def test_modest_aliases_are_fine() -> None:
    assert lint_text(billion_laughs(3)).findings == []  # 1,000 nodes


@pytest.mark.parametrize(
    "text",
    [
        "".join("  " * i + "a:\n" for i in range(500)),  # block mappings
        "".join("  " * i + "-\n" for i in range(500)),  # block sequences
        "a: " + "[" * 5000 + "]" * 5000 + "\n",  # flow
        "a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n",
    ],
)
def test_deep_nesting_is_refused(text: str) -> None:
    report = lint_text(text)
    assert rules(report) & {"yaml/too-deep", "yaml/syntax"}, report.findings
    assert "lint/internal-error" not in rules(report)


def test_nesting_at_the_limit_is_accepted() -> None:
    text = "".join("  " * i + "a:\n" for i in range(99)) + "  " * 99 + "a: 1\n"
    _, problems = parse_documents(text, Limits(max_depth=100))
    assert problems == []


def test_too_many_documents_are_refused_but_earlier_ones_are_kept() -> None:
    docs, problems = parse_documents("a: 1\n---\n" * 30, Limits(max_documents=10))
    assert len(docs) == 10 and [p.rule for p in problems] == ["yaml/too-many-documents"]


# -- files ----------------------------------------------------------------------------------------------


def test_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(Limits().max_file_bytes + 1)  # sparse: a big file that costs nothing
    text, problem = read_source(path)
    assert text is None and problem is not None
    assert problem.rule == "yaml/too-large" and "5242880" in problem.message


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    report = lint_files([str(path)])
    assert [f.rule for f in report.findings] == ["yaml/binary"]


def test_non_utf8_text_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nname: caf\xe9\n".encode("latin-1"))
    [finding] = lint_files([str(path)]).findings
    assert finding.rule == "yaml/encoding" and finding.line == 2


def test_utf16_with_bom_is_read() -> None:
    text, problem = decode("\ufeffa: 1\n".encode("utf-16"))
    assert problem is None and text is not None and text.endswith("a: 1\n")


def test_utf8_bom_is_ignored() -> None:
    text, problem = decode(b"\xef\xbb\xbfa: 1\n")
    assert problem is None and text == "a: 1\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    [finding] = lint_files([str(fifo)]).findings  # opening it would block forever
    assert finding.rule == "file/unreadable"


def test_large_legal_file_is_linted_in_bounded_time() -> None:
    items = "".join(
        f"  - name: item{i}\n    value: {i}\n    nested: {{a: [1, 2, 3], b: 'x'}}\n" for i in range(20000)
    )
    text = "apiVersion: v1\nkind: ConfigMap\nitems:\n" + items
    started = time.monotonic()
    report = lint_text(text)
    elapsed = time.monotonic() - started
    assert report.findings == [] and report.documents == 1
    assert elapsed < 10, f"{len(text)} bytes took {elapsed:.1f}s"
