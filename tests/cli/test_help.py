"""Every subcommand answers --help (argparse formats help text lazily, so a bad string only shows there)."""

import subprocess
import sys

import pytest

from rollout.cli.main import COMMAND_MODULES, SUBCOMMAND_MODULES, build_parser, main


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[arg-type]


def test_every_module_registers_a_command() -> None:
    assert len(_commands()) >= len(SUBCOMMAND_MODULES)


def test_each_command_is_mapped_to_the_module_that_registers_it() -> None:
    for module in SUBCOMMAND_MODULES:
        sub = next(a for a in build_parser((module,))._actions if a.dest == "command")
        for command in sub.choices:  # type: ignore[union-attr]
            assert COMMAND_MODULES.get(command) == module, command
    assert sorted(COMMAND_MODULES) == _commands()


def test_the_controller_command_imports_neither_the_sandbox_nor_numpy() -> None:
    probe = (
        "import sys\n"
        "from rollout.cli.main import main\n"
        "try:\n"
        "    main(['controller', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('numpy', 'rollout.sandbox', 'rollout.sim', 'rollout.demo') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", _commands())
def test_help_works(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert command in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
