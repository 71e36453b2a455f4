"""`kubectl knrollout ...`: the `rollout` command's cluster-facing subcommands as a kubectl plugin.

kubectl runs any executable named `kubectl-<name>` on its PATH as `kubectl <name>`, passing the arguments
that follow; `pip install knative-rollout` installs `kubectl-knrollout` beside `rollout`. The commands take
kubectl's own flags (`--kubeconfig`, `--context`, `-n`, and `-A` for list), so they read like kubectl's."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rollout.cli.main import main as rollout_main

PROG = "kubectl knrollout"
COMMANDS = ("list", "status", "promote", "abort", "pause", "resume", "retry", "undo", "lint")


def main(argv: Sequence[str] | None = None) -> int:
    return rollout_main(argv, prog=PROG, only=COMMANDS)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
