"""`rollout lint` as a command: exit codes, output formats, file discovery, many files."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rollout.cli.main import main
from tests.lint.helpers import dump, policy, service

GOOD = dump(policy("std"), service())
WARNING_ONLY = dump(
    policy("std", spec={"strategy": {"canary": {"steps": [{"weight": 10}, {"weight": 100}]}}})
)
BAD = dump(service("broken", traffic=[{"latestRevision": True, "percent": 90}], policy_name=None))
TRAFFIC_LINE = BAD.splitlines().index("  traffic:") + 1


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lint", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_clean_files_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "app.yaml", GOOD)
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 0
    assert out == "0 errors, 0 warnings in 1 file (2 objects)\n"


def test_errors_exit_1_and_text_names_file_line_path_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "bad.yaml", BAD)
    code, out, _ = run(capsys, str(path))
    assert code == 1
    first, summary = out.splitlines()
    assert first.startswith(
        f"{path}:{TRAFFIC_LINE}:3: error: spec.traffic: Traffic targets sum to 90, want 100 ("
    )
    assert first.endswith("[knative/percent-sum]")
    assert summary == "1 error, 0 warnings in 1 file (1 object)"


def test_warnings_exit_0_unless_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "p.yaml", WARNING_ONLY)
    assert run(capsys, str(path))[0] == 0
    assert run(capsys, "--strict", str(path))[0] == 1


@pytest.mark.parametrize("args", [["/no/such/path"], ["--output", "xml", "."], [], ["--nope", "."]])
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code, _, err = run(capsys, *args)
    except SystemExit as exit_:  # argparse exits by itself on bad flags
        code, err = int(exit_.code or 0), capsys.readouterr().err
    assert code == 2 and err


def test_json_output_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "a/bad.yaml", BAD)
    write(tmp_path, "a/good.yaml", GOOD)
    code, out, _ = run(capsys, "-o", "json", str(tmp_path))
    data: dict[str, Any] = json.loads(out)
    assert code == 1
    assert data["version"] == 1
    assert data["summary"] == {
        "files": 2,
        "documents": 3,
        "objects": 3,
        "errors": 1,
        "warnings": 0,
        "ok": False,
    }
    [finding] = data["findings"]
    assert set(finding) == {
        "file",
        "line",
        "column",
        "document",
        "kind",
        "name",
        "severity",
        "rule",
        "path",
        "message",
        "hint",
    }
    assert finding["file"].endswith("bad.yaml") and finding["line"] == TRAFFIC_LINE and finding["column"] == 3
    assert finding["kind"] == "Service" and finding["name"] == "broken" and finding["document"] == 0
    assert (finding["severity"], finding["rule"], finding["path"]) == (
        "error",
        "knative/percent-sum",
        "spec.traffic",
    )


def test_json_ok_follows_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "p.yaml", WARNING_ONLY)
    assert json.loads(run(capsys, "-o", "json", str(path))[1])["summary"]["ok"] is True
    assert json.loads(run(capsys, "-o", "json", "--strict", str(path))[1])["summary"]["ok"] is False


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(BAD.encode())))
    code, out, _ = run(capsys, "-")
    assert code == 1 and out.startswith(f"<stdin>:{TRAFFIC_LINE}:3: error:")


def test_discovery_skips_hidden_and_non_yaml_but_reads_named_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, ".git/bad.yaml", BAD)
    write(tmp_path, "app/.hidden.yaml", BAD)
    write(tmp_path, "app/notes.txt", BAD)
    write(tmp_path, "app/ok.yml", GOOD)
    named = write(tmp_path, "manifest.txt", BAD)
    assert run(capsys, str(tmp_path))[0] == 0
    assert run(capsys, str(tmp_path), str(named))[0] == 1


def test_symlink_loop_does_not_trap_the_walk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "d/ok.yaml", GOOD)
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 0 and "in 1 file" in out


def test_thousands_of_files_in_bounded_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for index in range(3000):
        write(tmp_path, f"team{index % 30}/svc{index}.yaml", dump(service(f"svc{index}", policy_name=None)))
    write(tmp_path, "team0/broken.yaml", "a: [\n")
    started = time.monotonic()
    code, out, _ = run(capsys, str(tmp_path))
    elapsed = time.monotonic() - started
    assert code == 1 and out.endswith("1 error, 0 warnings in 3001 files (3000 objects)\n")
    assert elapsed < 30, f"3001 files took {elapsed:.1f}s"


def test_no_yaml_files_is_said_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(tmp_path), "--allow-empty")
    assert code == 0 and "in 0 files" in out and "no *.yaml" in err


@pytest.mark.parametrize(
    "files",
    [
        {},  # an empty directory
        {"empty.yaml": ""},
        {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},  # nothing lint checks
    ],
)
def test_a_gate_that_checked_nothing_fails_unless_allowed(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code, _, err = run(capsys, str(tmp_path))
    assert code == 1 and "nothing was checked" in err and "--allow-empty" in err
    code, _, _ = run(capsys, str(tmp_path), "--allow-empty")
    assert code == 0


def test_a_bug_in_a_rule_is_a_finding_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rollout.lint import linter

    def broken(manifest: Any) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(linter, "manifest_issues", broken)
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", "a: [\n")
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 1
    assert "a.yaml: error: lint failed on this file: RuntimeError: boom" in out
    assert "b.yaml:2:1: error:" in out  # the other files are still linted
