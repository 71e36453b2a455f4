"""`rollout list`: the rollouts of a namespace, or of all of them with -A, in a table an on-call engineer
scans: target, phase, step, weights, verdicts, age. By default the newest rollout of each target; `--all`
adds the finished ones before it. Also `kubectl knrollout list` (rollout.cli.kubectl_plugin)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rollout.api.rollout import Rollout
from rollout.cli.kubeaccess import all_rollouts, api_client, current_namespace, run_command
from rollout.cli.status_view import age, table


def newest_per_target(rollouts: Sequence[Rollout]) -> list[Rollout]:
    """The last rollout of each target (`rollouts` oldest first per target, as all_rollouts gives them)."""
    newest: dict[tuple[str, str, str], Rollout] = {}
    for r in rollouts:
        newest[(r.metadata.namespace or "", r.spec.target.kind, r.spec.target.name)] = r
    return list(newest.values())


def verdicts(rollout: Rollout) -> str:
    return ", ".join(f"{r.name} {r.verdict.value}" for r in rollout.status.analysis) or "-"


def rollout_rows(rollouts: Sequence[Rollout], now: datetime, *, namespaces: bool) -> list[list[str]]:
    head = ["TARGET", "ROLLOUT", "PHASE", "STEP", "STABLE/CANARY", "VERDICTS", "AGE"]
    rows = [(["NAMESPACE"] if namespaces else []) + head]
    for r in rollouts:
        s = r.status
        step = s.step or (f"{s.current_step + 1}/{s.step_count}" if s.step_count else "-")
        paused = f" ({s.paused_for.value})" if s.paused_for else ""
        row = [
            r.spec.target.name,
            r.metadata.name or "",
            f"{s.phase.value}{paused}",
            step,
            f"{s.stable_weight}%/{s.canary_weight}%",
            verdicts(r),
            age(r.status.started_at, now),
        ]
        rows.append(([r.metadata.namespace or ""] if namespaces else []) + row)
    return rows


async def _list(args: argparse.Namespace) -> int:
    namespace = (
        None
        if args.all_namespaces
        else args.namespace or await current_namespace(args.kubeconfig, args.context)
    )
    async with api_client(args.kubeconfig, args.context) as api:
        found = await all_rollouts(api, namespace)
    shown = found if args.all else newest_per_target(found)
    if args.output == "json":
        print(json.dumps({"items": [r.to_wire() for r in shown]}))
        return 0
    if not shown:
        where = f"namespace {namespace}" if namespace else "any namespace"
        print(f"No rollouts in {where}.")
        return 0
    print("\n".join(table(rollout_rows(shown, datetime.now(UTC), namespaces=namespace is None))))
    return 0


def run(args: argparse.Namespace) -> int:
    return run_command(_list(args), args.kubeconfig)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "list",
        help="list rollouts: target, phase, step, weights, verdicts, age",
        description="The newest rollout of each target in a namespace (-A: every namespace).",
    )
    p.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig's)")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument("--all", action="store_true", help="finished rollouts too, not only each target's newest")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")
    p.set_defaults(func=run)
