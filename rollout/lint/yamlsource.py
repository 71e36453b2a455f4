"""Reading a YAML file for `rollout lint`: its bytes within the size limit, decoded to text (a byte-order
mark honoured, NUL bytes and invalid UTF-8 reported with their position), before `yamlload` parses it."""

from __future__ import annotations

import os
import stat
from pathlib import Path as FsPath

from rollout.lint.findings import Severity
from rollout.lint.yamlload import Limits, Position, YamlProblem

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode(raw: bytes) -> tuple[str | None, YamlProblem | None]:
    """The text of a YAML file, or why it is not text."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), None
            except UnicodeDecodeError as exc:
                return None, _encoding_problem(raw, exc.start, f"invalid {encoding.upper()} text")
    nul = raw.find(b"\x00")
    if nul >= 0:
        return None, YamlProblem(
            Severity.ERROR,
            "yaml/binary",
            f"binary content (a NUL byte at offset {nul}), not a YAML text file",
            "remove it from the linted paths, or name only the manifests to lint",
            _byte_position(raw, nul),
        )
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, _encoding_problem(raw, exc.start, "the file is not UTF-8")


def _byte_position(raw: bytes, offset: int) -> Position:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return Position(raw.count(b"\n", 0, offset) + 1, offset - line_start + 1)


def _encoding_problem(raw: bytes, offset: int, what: str) -> YamlProblem:
    return YamlProblem(
        Severity.ERROR,
        "yaml/encoding",
        f"{what}: undecodable byte 0x{raw[offset]:02x} at offset {offset}",
        "save the file as UTF-8",
        _byte_position(raw, offset),
    )


def read_source(path: FsPath, limits: Limits | None = None) -> tuple[str | None, YamlProblem | None]:
    """The text of a file to lint, read through `decode`; never reads more than the size limit allows and
    never opens what is not a regular file (a FIFO or a device would block or never end)."""
    limits = limits or Limits()
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return None, YamlProblem(
                Severity.ERROR, "file/unreadable", "not a regular file", "lint regular files only"
            )
        if info.st_size > limits.max_file_bytes:
            return None, _too_large(info.st_size, limits)
        with open(path, "rb") as handle:
            raw = handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        return None, YamlProblem(
            Severity.ERROR,
            "file/unreadable",
            f"cannot read: {exc.strerror or exc}",
            "check the path and its permissions",
        )
    if len(raw) > limits.max_file_bytes:  # grew while we looked
        return None, _too_large(len(raw), limits)
    return decode(raw)


def _too_large(size: int, limits: Limits) -> YamlProblem:
    return YamlProblem(
        Severity.ERROR,
        "yaml/too-large",
        f"file is {size} bytes; lint reads files up to {limits.max_file_bytes} bytes",
        "Kubernetes refuses objects above about 1.5 MiB anyway: split the file",
    )
