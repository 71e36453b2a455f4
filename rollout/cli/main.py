"""Entry point of the `rollout` command.

Each subcommand lives in its own module under `rollout.cli` and exposes
`register(subparsers) -> None`, which adds its parser and sets `func` (returning an exit code).
Exit codes: 0 success, 1 the command ran and found problems, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rollout import __version__

# Subcommand modules, in the order `rollout --help` lists them.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "rollout.cli.crds",
    "rollout.cli.lint",
    "rollout.cli.sandbox",
    "rollout.cli.simulate",
    "rollout.cli.controller",
    "rollout.cli.manual",
    "rollout.cli.demo",
)


# The module that registers each command: running a command imports its module alone, so that the controller
# process does not carry the sandbox, the simulator and numpy (about 22 MB of RSS). tests/cli/test_help.py
# checks this against what the modules register.
COMMAND_MODULES: dict[str, str] = {
    "crds": "rollout.cli.crds",
    "lint": "rollout.cli.lint",
    "sandbox": "rollout.cli.sandbox",
    "simulate": "rollout.cli.simulate",
    "controller": "rollout.cli.controller",
    **dict.fromkeys(("status", "promote", "abort", "pause", "resume", "retry"), "rollout.cli.manual"),
    "demo": "rollout.cli.demo",
}


def build_parser(modules: Sequence[str] = SUBCOMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollout",
        description="knative-rollout: progressive delivery for Knative Serving.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in modules:
        module = importlib.import_module(module_name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    command = args_in[0] if args_in else None
    parser = build_parser((COMMAND_MODULES[command],) if command in COMMAND_MODULES else SUBCOMMAND_MODULES)
    args = parser.parse_args(args_in)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
