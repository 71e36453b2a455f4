"""Every subcommand answers --help (argparse formats help text lazily, so a bad string only shows there),
and the one registry of subcommands (the entry-point group) names each command's own module."""

import subprocess
import sys

import pytest

from rollout.cli import main as cli
from rollout.cli.main import build_parser, commands, main


def _registered(names: list[str] | None = None) -> list[str]:
    parser = build_parser(names)
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[arg-type]


def test_every_command_is_registered_by_its_own_entry_point() -> None:
    installed = commands()
    assert {"controller", "lint", "status", "sandbox", "simulate", "demo"} <= set(installed)
    for name, ep in installed.items():
        registered = _registered([name])
        assert name in registered, name
        for other in registered:  # a module that registers several commands names them all
            assert installed[other].value == ep.value, (name, other)
    assert _registered() == sorted(installed)


def test_the_products_commands_come_first() -> None:
    names = list(commands())
    assert names.index("controller") < names.index("sandbox")


def test_the_controller_command_imports_neither_the_lab_nor_numpy() -> None:
    probe = (
        "import sys\n"
        "from rollout.cli.main import main\n"
        "try:\n"
        "    main(['controller', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('numpy', 'celpy', 'rollout_lab') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_lab_command_without_the_lab_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    product_only = {n: ep for n, ep in commands().items() if n not in cli.LAB_COMMANDS}
    monkeypatch.setattr(cli, "commands", lambda: product_only)
    assert main(["sandbox", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rollout sandbox: part of the local lab") and "knative-rollout[sandbox]" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("command", _registered())
def test_help_works(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert command in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
