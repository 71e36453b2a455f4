"""Entry point of the `rollout` command.

Subcommands are entry points of the group `knative_rollout.commands` (pyproject.toml; the lab's
lab/pyproject.toml adds its own): `name = module:register`, where `register(subparsers) -> None` adds the
parser(s) of that module and sets `func` (returning an exit code). That group is the one registry: running a
command loads its module alone, so that the controller process does not import the lab (the sandbox, the
simulator, numpy), and `rollout --help` loads each module once.
Exit codes: 0 success, 1 the command ran and found problems, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from rollout import __version__

GROUP = "knative_rollout.commands"
PRODUCT = "knative-rollout"
# Commands of the lab distribution, named here only to say how to get them when it is not installed.
LAB_COMMANDS = ("sandbox", "simulate", "demo")
LAB_HINT = "pip install 'knative-rollout[sandbox]' (in a checkout of the repository: pip install -e ./lab)"


def commands() -> dict[str, EntryPoint]:
    """Every installed subcommand by name, the product's first (in their pyproject order), then others."""
    found = list(entry_points(group=GROUP))
    found.sort(key=lambda ep: ep.dist is None or ep.dist.name != PRODUCT)
    return {ep.name: ep for ep in found}


def build_parser(
    names: Iterable[str] | None = None,
    prog: str = "rollout",
    installed: Mapping[str, EntryPoint] | None = None,
) -> argparse.ArgumentParser:
    """The parser with the named commands' modules registered (None: every installed command).
    `installed`: the commands found already (the entry points are scanned once per process)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="knative-rollout: progressive delivery for Knative Serving."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    installed = commands() if installed is None else installed
    wanted = installed if names is None else {n: installed[n] for n in names if n in installed}
    target: Any = subparsers if names is None else _Only(subparsers, set(names))
    loaded: set[str] = set()
    for ep in wanted.values():
        if ep.value not in loaded:  # one module may register several commands (status, promote, ...)
            loaded.add(ep.value)
            ep.load()(target)
    return parser


class _Only:
    """The subparsers as a restricted parser's modules see them (kubectl knrollout): a module registers all
    its commands, and those not offered here go to a parser nobody reads."""

    def __init__(self, subparsers: Any, allowed: set[str]) -> None:
        self.subparsers = subparsers
        self.allowed = allowed

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name in self.allowed:
            parser: argparse.ArgumentParser = self.subparsers.add_parser(name, **kwargs)
            return parser
        kwargs.pop("help", None)
        kwargs.pop("aliases", None)
        return argparse.ArgumentParser(prog=name, **kwargs)


def main(argv: Sequence[str] | None = None, prog: str = "rollout", only: Sequence[str] | None = None) -> int:
    """Run a command. `only`: the commands this entry point offers (the kubectl plugin's), else all."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    command = args_in[0] if args_in else None
    installed = commands() if only is None else {n: ep for n, ep in commands().items() if n in only}
    if command in LAB_COMMANDS and command not in installed and only is None:
        print(
            f"rollout {command}: part of the local lab, which is not installed: {LAB_HINT}", file=sys.stderr
        )
        return 2
    parser = build_parser(
        [command] if command in installed else list(installed), prog=prog, installed=installed
    )
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
