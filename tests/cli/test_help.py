"""Every subcommand answers --help (argparse formats help text lazily, so a bad string only shows there)."""

import pytest

from rollout.cli.main import SUBCOMMAND_MODULES, build_parser, main


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[arg-type]


def test_every_module_registers_a_command() -> None:
    assert len(_commands()) >= len(SUBCOMMAND_MODULES)


@pytest.mark.parametrize("command", _commands())
def test_help_works(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert command in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
