"""Which files `rollout lint PATH...` reads.

A file named on the command line is read whatever its name (`-` is standard input). A directory is walked
recursively for `*.yaml` and `*.yml`, in sorted order, skipping hidden entries (`.git`, `.github`, ...) and
not following symbolic links to directories (so a link loop cannot trap the walk)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

YAML_SUFFIXES = (".yaml", ".yml")
STDIN = "-"


@dataclass(frozen=True)
class Discovery:
    files: list[str]  # paths as the user will read them in findings, in a stable order
    missing: list[str]  # command-line paths that do not exist (a usage error)
    unreadable: list[tuple[str, str]]  # directories that could not be listed, and why


def discover(paths: Iterable[str]) -> Discovery:
    files: list[str] = []
    missing: list[str] = []
    unreadable: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if name not in seen:
            seen.add(name)
            files.append(name)

    for raw in paths:
        if raw == STDIN:
            add(STDIN)
            continue
        path = Path(raw)
        if path.is_dir():
            for found in _walk(path, unreadable):
                add(found)
        elif path.exists() or path.is_symlink():
            add(str(path))
        else:
            missing.append(raw)
    return Discovery(files, missing, unreadable)


def _walk(root: Path, unreadable: list[tuple[str, str]]) -> list[str]:
    found: list[str] = []

    def failed(exc: OSError) -> None:
        unreadable.append((str(exc.filename or root), exc.strerror or str(exc)))

    for directory, dirnames, filenames in os.walk(root, onerror=failed, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.endswith(YAML_SUFFIXES):
                found.append(os.path.join(directory, name))
    return found
