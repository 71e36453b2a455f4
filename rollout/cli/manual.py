"""`rollout status` and the manual actions `rollout promote|abort|pause|resume|retry|undo SERVICE`.

An action is recorded on the target's Rollout (`spec.request`, with an id, who and why); the controller acts
on it at its next reconcile and acknowledges it in `status.handledRequest`. With --wait the command waits for
that acknowledgement and prints the outcome. Exit codes: 0 done, 1 a problem (no rollout, refused, timeout),
2 usage."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from rollout.api.rollout import RequestAction, Rollout
from rollout.cli.kubeaccess import (
    CliError,
    Target,
    api_client,
    current_namespace,
    latest_created,
    pick,
    read_rollout,
    recent_events,
    requester,
    revision_problem,
    run_command,
    send_request,
    target_rollouts,
    why_no_rollout,
)
from rollout.cli.status_view import render_status
from rollout.engine.machine import request_applies

# `status -w` after a deploy: how long to wait for the controller to start the new revision's rollout
NEW_ROLLOUT_WAIT = 60.0

ACTIONS: dict[str, tuple[RequestAction, str]] = {
    "promote": (RequestAction.PROMOTE, "skip the remaining steps and gates and promote the candidate now"),
    "abort": (RequestAction.ABORT, "send all traffic back to stable and end the rollout (final)"),
    "pause": (RequestAction.PAUSE, "hold the current weight (analysis keeps running)"),
    "resume": (RequestAction.RESUME, "continue a paused rollout, or open a manual gate"),
    "retry": (RequestAction.RETRY, "start a new attempt of a rolled-back, failed or aborted rollout"),
    "undo": (
        RequestAction.UNDO,
        "after a promotion, put all traffic back on the previous stable (or --to-revision) at once; it holds "
        "until a new revision is rolled out",
    ),
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="SERVICE", help="the Knative Service (or, with --route, Route)")
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig's)")
    parser.add_argument("--route", action="store_true", help="the target is a standalone Route")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context")


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status",
        help="show a Service's rollout: phase, step, weights, analysis, history, events",
        description="Show the running (else the latest) Rollout of a Service.",
    )
    _common(status)
    status.add_argument("-o", "--output", choices=("text", "json"), default="text")
    status.add_argument("-w", "--watch", action="store_true", help="refresh every 2s until the rollout ends")
    status.set_defaults(func=run_status)
    for name, (_, text) in ACTIONS.items():
        parser = subparsers.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]}.")
        _common(parser)
        parser.add_argument("--reason", default="", help="why (recorded on the Rollout and in its Events)")
        parser.add_argument("--wait", action="store_true", help="wait until the controller has acted on it")
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait with --wait")
        if name == "undo":
            parser.add_argument(
                "--to-revision", metavar="REVISION", help="a Ready revision of the Service to serve instead"
            )
        parser.set_defaults(func=run_action, action_name=name, to_revision=None)


async def _target(args: argparse.Namespace) -> Target:
    namespace = args.namespace or await current_namespace(args.kubeconfig, args.context)
    return Target(namespace, args.target, "Route" if args.route else "Service")


async def _status(args: argparse.Namespace) -> int:
    target = await _target(args)
    waited = 0.0
    async with api_client(args.kubeconfig, args.context) as api:
        while True:
            rollouts = await target_rollouts(api, target)
            chosen = pick(rollouts, None)
            if chosen is None:
                # `status -w` right after the first deploy: the controller starts the rollout in a moment
                if not args.watch or waited >= NEW_ROLLOUT_WAIT or await latest_created(api, target) is None:
                    raise CliError(await why_no_rollout(api, target, "Rollout yet"))
                waited += 2.0
                await asyncio.sleep(2.0)
                continue
            names = {chosen.metadata.name, target.name}
            events = await recent_events(api, target.namespace, names)
            if args.output == "json":
                print(
                    json.dumps({"rollout": chosen.to_wire(), "history": [r.metadata.name for r in rollouts]})
                )
            else:
                if args.watch and sys.stdout.isatty():  # redraw on a terminal; appended pages in a pipe
                    sys.stdout.write("\x1b[2J\x1b[H")
                sys.stdout.write(render_status(chosen, rollouts, events, datetime.now(UTC)))
            sys.stdout.flush()
            if not args.watch:
                return 0
            if chosen.status.phase.terminal:
                if not await _newer_revision(api, target, chosen):
                    return 0
                waited += 2.0
                if waited > NEW_ROLLOUT_WAIT:
                    raise CliError(
                        f"no rollout started within {NEW_ROLLOUT_WAIT:.0f}s; is the controller running?"
                    )
            await asyncio.sleep(2.0)


async def _newer_revision(api: Any, target: Target, shown: Rollout) -> bool:
    """A revision newer than the finished rollout shown, whose rollout the controller is about to start:
    `status -w` right after a deploy waits for it rather than ending on the previous rollout."""
    newest = await latest_created(api, target)
    if newest is None or newest in (shown.spec.candidate_revision, shown.spec.stable_revision):
        return False
    print(f"(revision {newest} is new: waiting for its rollout to start)", flush=True)
    return True


async def _action(args: argparse.Namespace) -> int:
    action, _ = ACTIONS[args.action_name]
    target = await _target(args)
    async with api_client(args.kubeconfig, args.context) as api:
        rollouts = await target_rollouts(api, target)
        chosen = pick(rollouts, action)
        if chosen is None:
            what = "running Rollout" if action != RequestAction.RETRY else "Rollout"
            raise CliError(await why_no_rollout(api, target, what))
        if not request_applies(action, chosen):
            status = chosen.status
            raise CliError(
                f"{args.action_name} does not apply to Rollout {target.namespace}/{chosen.metadata.name}, "
                f"which is {status.phase.value} ({status.reason or 'no reason yet'}); nothing was sent"
            )
        if args.to_revision:
            problem = await revision_problem(api, target, args.to_revision)
            if problem is not None:
                raise CliError(f"--to-revision {args.to_revision}: {problem}; nothing was sent")
        who = await requester(api)
        request_id = await send_request(api, chosen, action, args.reason, who, revision=args.to_revision)
        name = chosen.metadata.name
        print(f"{args.action_name} requested on Rollout {target.namespace}/{name} (request {request_id})")
        if not args.wait:
            print("the controller acts on it at its next reconcile; `rollout status` shows the outcome")
            return 0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            current: Rollout | None = await read_rollout(api, target.namespace, name)
            if current is not None and current.status.handled_request == request_id:
                print(f"done: phase {current.status.phase.value} ({current.status.reason})")
                return 0
            await asyncio.sleep(0.5)
        raise CliError(f"the controller did not act on request {request_id} within {args.timeout:g}s")


def run_status(args: argparse.Namespace) -> int:
    return run_command(_status(args), args.kubeconfig)


def run_action(args: argparse.Namespace) -> int:
    return run_command(_action(args), args.kubeconfig)
