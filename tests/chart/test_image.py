"""The Dockerfile cannot be built here (no Docker engine), so these tests keep it consistent with what it
packages and with the chart that runs it: Python version, user id, entrypoint, exposed port, build context."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
import yaml

from tests.chart.rendering import CHART_DIR, VALUE_SETS, chart, controller, render

ROOT = CHART_DIR.parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _instructions(name: str) -> list[str]:
    """Arguments of every `name` instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", text, re.MULTILINE)]


def _python_version() -> str:
    (arg,) = [a for a in _instructions("ARG") if a.startswith("PYTHON_VERSION=")]
    return arg.split("=", 1)[1]


def test_every_stage_uses_the_python_the_package_is_built_for() -> None:
    version = _python_version()
    froms = _instructions("FROM")
    assert len(froms) >= 2, "a multi-stage build: build stage and runtime stage"
    for line in froms:
        assert line.split()[0] == "python:${PYTHON_VERSION}-slim-bookworm", line
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert version == minimum, f"image Python {version}, package requires {minimum}"
    assert version == PYPROJECT["tool"]["mypy"]["python_version"]


def test_runtime_stage_copies_only_the_virtualenv() -> None:
    runtime = DOCKERFILE.split("\nFROM ")[-1]
    copies = [line for line in runtime.splitlines() if line.startswith("COPY")]
    assert copies == ["COPY --from=build /opt/venv /opt/venv"]
    assert "PATH=/opt/venv/bin:$PATH" in runtime


def _uid_gid() -> tuple[int, int]:
    (user,) = _instructions("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), "USER must be numeric so the kubelet can verify runAsNonRoot"
    return int(uid), int(gid)


def test_user_is_the_one_the_chart_runs_as() -> None:
    uid, gid = _uid_gid()
    assert uid != 0
    assert f"--uid {uid} --gid {gid}" in " ".join(_instructions("RUN"))
    values = chart().values["podSecurityContext"]
    assert (values["runAsUser"], values["runAsGroup"]) == (uid, gid)
    psc = controller(render({})).pod["securityContext"]
    assert psc["runAsUser"] == uid and psc["runAsNonRoot"] is True


def _entrypoint() -> list[str]:
    (entry,) = _instructions("ENTRYPOINT")
    command: list[str] = json.loads(entry)
    return command


def test_entrypoint_is_the_console_script() -> None:
    command = _entrypoint()
    assert command == ["rollout", "controller"]
    assert PYPROJECT["project"]["scripts"]["rollout"] == "rollout.cli.main:main"


def test_exposed_port_is_the_metrics_port() -> None:
    assert _instructions("EXPOSE") == [str(chart().values["controller"]["metricsPort"])]


def test_chart_version_follows_the_package() -> None:
    meta = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert meta["appVersion"] == PYPROJECT["project"]["version"]
    assert controller(render({})).container["image"].endswith(":" + PYPROJECT["project"]["version"])


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    ignore = [line for line in ignore if line and not line.startswith("#")]
    assert ignore[0] == "*", "allow-list: everything is excluded unless named"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied: set[str] = set()
    for copy in _instructions("COPY"):
        if "--from=" in copy:
            continue
        copied.update(p.rstrip("/") for p in copy.split()[:-1])
    assert copied == allowed
    for path in copied:
        assert (ROOT / path).exists(), path


def _controller_parser() -> object:
    from rollout.cli.main import build_parser

    return build_parser(["controller"])


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_chart_args_are_flags_the_controller_accepts(name: str) -> None:
    """The image runs `rollout controller` + the chart's args: the controller's own parser must accept them."""
    parser = _controller_parser()
    args = [a for a in controller(render(VALUE_SETS[name])).args if a != "--extra-flag"]
    parsed = parser.parse_args([*_entrypoint()[1:], *args])  # type: ignore[attr-defined]
    assert parsed.command == "controller"


def test_install_guide_builds_the_image_the_chart_pulls() -> None:
    install = (ROOT / "docs" / "install.md").read_text()
    image = controller(render({})).container["image"]
    assert f"docker build -t {image} ." in install
    assert f"kind load docker-image {image}" in install
