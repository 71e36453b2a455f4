"""Calling the policy's webhooks, contained (rollout.controller.outbound: the admins' allow-list, no
redirects, a capped answer, one deadline per call), the body signed with the admins' key (HMAC-SHA256), and
the receiver's credentials only from a Secret of the policy's namespace that opts in.

`WebhookRunner` runs the calls beside the reconcile workers: a reconcile starts the due calls and returns;
each finished call re-queues its target, whose next reconcile hands the result to `decide`. At most
`per_namespace` calls of one namespace run at once, so a team's hanging hooks delay only that team."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from aiohttp.abc import AbstractResolver

from rollout.analysis.auth import AuthError, SecretReader
from rollout.api.policy import MAX_WEBHOOK_CALL_SECONDS
from rollout.api.rollout import Phase, Rollout
from rollout.controller.beside import BesideCalls, CallId
from rollout.controller.egress import Destinations
from rollout.controller.outbound import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Attempts,
    Outbound,
    secret_headers,
    signature,
    signed,
)
from rollout.engine.inputs import WebhookResult
from rollout.engine.webhooks import WebhookCall

log = structlog.get_logger(__name__)


def webhook_payload(rollout: Rollout, call: WebhookCall) -> dict[str, Any]:
    spec, status = rollout.spec, rollout.status
    return {
        "key": call.key,
        "type": call.webhook.type.value,
        "name": rollout.metadata.name,
        "namespace": rollout.metadata.namespace,
        "target": {"kind": spec.target.kind, "name": spec.target.name},
        "phase": status.phase.value,
        "stableRevision": spec.stable_revision,
        "candidateRevision": spec.candidate_revision,
        "attempt": spec.attempt,
        "step": status.current_step,
        "stepCount": status.step_count,
        "canaryWeight": status.canary_weight,
        "stableWeight": status.stable_weight,
        "metadata": dict(call.webhook.metadata),
    }


@dataclass(frozen=True)
class WebhookSettings:
    """The admins' side of webhooks (controller flags / Helm values)."""

    destinations: Destinations = field(default_factory=Destinations)
    signing_key: bytes | None = None
    call_deadline: float = MAX_WEBHOOK_CALL_SECONDS
    per_namespace: int = 4  # calls of one namespace running at once


class WebhookCaller:
    """One call at a time per `call`; never raises. `resolver`/`socket_factory` replace the DNS resolver and
    the socket creation (tests point names at 127.0.0.1 and refuse any other address)."""

    def __init__(
        self,
        settings: WebhookSettings | None = None,
        *,
        secrets: SecretReader | None = None,
        resolver: AbstractResolver | None = None,
        socket_factory: Callable[[Any], Any] | None = None,
        backoff: float = 0.2,
        max_backoff: float = 2.0,
    ) -> None:
        self.settings = settings or WebhookSettings()
        self.secrets = secrets
        self.outbound = Outbound(
            self.settings.destinations,
            resolver=resolver,
            socket_factory=socket_factory,
            backoff=backoff,
            max_backoff=max_backoff,
        )

    async def close(self) -> None:
        await self.outbound.close()

    async def call(self, rollout: Rollout, call: WebhookCall) -> WebhookResult:
        hook = call.webhook
        problem = self.settings.destinations.url_problem(hook.url)
        if problem is not None:
            log.warning("webhook refused", key=call.key, rollout=rollout.metadata.name, reason=problem)
            return WebhookResult(False, None, f"refused: {problem}")
        body = json.dumps(webhook_payload(rollout, call), separators=(",", ":")).encode()
        try:
            extra = await secret_headers(
                self.secrets, rollout.metadata.namespace or "", hook.headers, f"webhooks[{hook.name}]"
            )
        except AuthError as exc:
            return WebhookResult(False, None, str(exc))
        headers = {"Content-Type": "application/json", **extra, **signed(self.settings.signing_key, body)}
        attempts = Attempts(hook.timeout, hook.retries, self.settings.call_deadline)
        result = await self.outbound.post(hook.url, body, headers, attempts)
        if not result.ok:
            log.warning("webhook failed", key=call.key, rollout=rollout.metadata.name, message=result.message)
        return result


# Results delivered whether or not the call is due again: a rollback hook is due only at an analysis tick,
# and its answer arrives after that tick's reconcile.
_POLLED = "rollback/"


class WebhookRunner:
    """Webhook calls beside the workers (rollout.controller.beside). `notify(target)` re-queues a target when
    one of its calls has finished."""

    def __init__(
        self, caller: WebhookCaller, notify: Callable[[Any], None], per_namespace: int | None = None
    ) -> None:
        self.caller = caller
        self.calls: BesideCalls[WebhookResult] = BesideCalls(
            notify,
            per_namespace or caller.settings.per_namespace,
            lambda why: WebhookResult(False, None, why),
        )

    @staticmethod
    def _id(rollout: Rollout, key: str) -> CallId:
        return (rollout.metadata.namespace or "", rollout.metadata.name, key)

    def pending(self, rollout: Rollout) -> list[str]:
        return sorted(cid[2] for cid in self.calls.running_under(self._id(rollout, "")[:2]))

    def collect(
        self, rollout: Rollout, due: Sequence[WebhookCall]
    ) -> tuple[dict[str, WebhookResult], list[WebhookCall]]:
        """The finished results this decision may use, and the due calls to start once the decision (which
        lists them in status.pendingWebhooks) is recorded."""
        out: dict[str, WebhookResult] = {}
        starting: list[WebhookCall] = []
        for call in due:
            cid = self._id(rollout, call.key)
            answer = self.calls.take(cid)
            if answer is not None:
                out[call.key] = answer
            elif not self.calls.running(cid):
                starting.append(call)
        analysing = rollout.status.phase in (Phase.PROGRESSING, Phase.PAUSED)
        for cid in self.calls.done_under(self._id(rollout, "")[:2]):
            if not cid[2].startswith(_POLLED):
                continue
            answer = self.calls.take(cid)
            if (
                analysing and answer is not None
            ):  # a rollback hook that answers after its rollout ended asks nothing
                out[cid[2]] = answer
        return out, starting

    def start(self, target: Any, rollout: Rollout, calls: Sequence[WebhookCall]) -> None:
        for call in calls:
            self.calls.start(target, self._id(rollout, call.key), partial(self.caller.call, rollout, call))

    def forget(self, rollout: Rollout) -> None:
        """Drop what a finished rollout left: results nobody will ask for."""
        for cid in self.calls.done_under(self._id(rollout, "")[:2]):
            self.calls.take(cid)

    @property
    def in_flight(self) -> int:
        return self.calls.in_flight

    async def close(self) -> None:
        await self.calls.close()
        await self.caller.close()


__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookCaller",
    "WebhookRunner",
    "WebhookSettings",
    "signature",
]
