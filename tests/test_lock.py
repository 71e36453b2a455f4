"""The lock files (scripts/lock) cover pyproject.toml: every dependency it names is pinned, at a version its
specifier allows, with hashes; so scripts/bootstrap (which installs only the lock) and the image install
what the package asks for. A dependency added to pyproject.toml without re-locking fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LAB = tomllib.loads((ROOT / "lab" / "pyproject.toml").read_text())
# the lab's dependencies but the product, which comes from this checkout
LAB_DEPS = [d for d in LAB["project"]["dependencies"] if Requirement(d).name != PYPROJECT["project"]["name"]]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)(?: ; (.*?))?(?: \\)?$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, list[str]]:
    """name -> versions pinned for this interpreter; every pin must carry a hash."""
    text = (ROOT / "requirements" / lock).read_text()
    out: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = block.splitlines()[0]
        match = PIN.match(first)
        if match is None:
            continue
        assert "--hash=sha256:" in block, f"{lock}: {first} has no hash"
        name, version, marker = match.groups()
        if marker and not Marker(marker).evaluate({k: str(v) for k, v in default_environment().items()}):
            continue
        out.setdefault(_norm(name), []).append(version)
    return out


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("runtime.lock", PYPROJECT["project"]["dependencies"]),
        (
            "test.lock",
            [
                *PYPROJECT["project"]["dependencies"],
                *PYPROJECT["project"]["optional-dependencies"]["test"],
                *LAB_DEPS,
            ],
        ),
    ],
)
def test_every_dependency_is_locked_at_an_allowed_version(lock: str, requirements: list[str]) -> None:
    locked = pins(lock)
    for text in requirements:
        req = Requirement(text)
        versions = locked.get(_norm(req.name))
        assert versions, f"{req.name} is not in requirements/{lock}: run scripts/lock"
        assert all(req.specifier.contains(v, prereleases=True) for v in versions), (req, versions)


def test_the_runtime_lock_holds_no_test_tool() -> None:
    locked = pins("runtime.lock")
    for text in PYPROJECT["project"]["optional-dependencies"]["test"]:
        assert _norm(Requirement(text).name) not in locked, text


def test_the_runtime_lock_holds_nothing_only_the_lab_needs() -> None:
    """The image installs runtime.lock: the simulator's numpy and the sandbox's cel-python stay out."""
    locked = pins("runtime.lock")
    lab_names = {_norm(Requirement(d).name) for d in LAB_DEPS}
    assert {"numpy", "cel-python"} <= lab_names
    assert not {"numpy", "cel-python"} & set(locked)
