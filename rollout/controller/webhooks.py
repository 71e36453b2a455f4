"""Calling the policy's webhooks, contained: only to destinations the admins allow (rollout.controller.egress,
checked on every resolved address), no redirects, the answer cut at a few KiB while reading, one overall
deadline per call (attempts and waits included), the body signed with the admins' key (HMAC-SHA256), and
the receiver's credentials only from a Secret of the policy's namespace that opts in.

`WebhookRunner` runs the calls beside the reconcile workers: a reconcile starts the due calls and returns;
each finished call re-queues its target, whose next reconcile hands the result to `decide`. At most
`per_namespace` calls of one namespace run at once, so a team's hanging hooks delay only that team."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from rollout.analysis.auth import AuthError, SecretReader, SecretRefReader, header_value
from rollout.api.policy import MAX_WEBHOOK_CALL_SECONDS
from rollout.api.rollout import Phase, Rollout
from rollout.controller.egress import Destinations, GuardedResolver, refusal
from rollout.engine.inputs import WebhookResult
from rollout.engine.webhooks import WebhookCall

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Rollout-Signature"  # "sha256=" + hex HMAC of "<timestamp>.<body>"
TIMESTAMP_HEADER = "X-Rollout-Timestamp"  # unix seconds, so receivers can refuse replays
MAX_ANSWER_BYTES = 4096  # of an answer, only this much is read (the status message keeps 512 characters)


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


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookSettings:
    """The admins' side of webhooks (controller flags / Helm values)."""

    destinations: Destinations = field(default_factory=Destinations)
    signing_key: bytes | None = None
    call_deadline: float = MAX_WEBHOOK_CALL_SECONDS
    per_namespace: int = 4  # calls of one namespace running at once


class _Retryable(Exception):
    def __init__(self, result: WebhookResult) -> None:
        super().__init__(result.message)
        self.result = result


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
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._resolver = resolver
        self._socket_factory = socket_factory
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            inner = self._resolver or aiohttp.ThreadedResolver()
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.settings.destinations, inner),
                socket_factory=self._socket_factory,
                limit_per_host=8,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": "knative-rollout"}, trust_env=False
            )
        return self._session

    async def _headers(self, rollout: Rollout, call: WebhookCall, body: bytes) -> dict[str, str]:
        """The call's headers: literal ones, those from opted-in Secrets of the policy's namespace (read and
        checked as a metric source's are), and the signature. Raises AuthError."""
        headers = {"Content-Type": "application/json"}
        namespace = rollout.metadata.namespace or ""
        read = SecretRefReader(self.secrets, namespace, opt_in=True) if self.secrets is not None else None
        for i, header in enumerate(call.webhook.headers):
            where = f"webhooks[{call.webhook.name}].headers[{i}] ({header.name})"
            if header.secret_key_ref is None:
                headers[header.name] = header.value or ""
            elif read is None:
                raise AuthError(f"{where}: this controller reads no Secrets for webhooks")
            else:
                headers[header.name] = header_value(await read(header.secret_key_ref, where), where)
        if self.settings.signing_key is not None:
            stamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = signature(self.settings.signing_key, stamp, body)
        return headers

    async def _once(self, url: str, body: bytes, headers: Mapping[str, str], seconds: float) -> WebhookResult:
        try:
            async with self._client().post(
                url,
                data=body,
                headers=dict(headers),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as resp:
                raw = await resp.content.read(MAX_ANSWER_BYTES)
                text = raw.decode("utf-8", errors="replace")[:512].strip()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            refused = refusal(exc)
            if refused is not None:
                return WebhookResult(False, None, f"refused: {refused}")
            raise _Retryable(WebhookResult(False, None, f"{type(exc).__name__}: {exc}".strip(": "))) from None
        if 300 <= resp.status < 400:
            return WebhookResult(False, resp.status, f"answered {resp.status}: redirects are not followed")
        result = WebhookResult(200 <= resp.status < 300, resp.status, text)
        if resp.status >= 500 or resp.status == 429:
            raise _Retryable(result)
        return result

    async def call(self, rollout: Rollout, call: WebhookCall) -> WebhookResult:
        hook = call.webhook
        problem = self.settings.destinations.url_problem(hook.url)
        if problem is not None:
            log.warning("webhook refused", key=call.key, rollout=rollout.metadata.name, reason=problem)
            return WebhookResult(False, None, f"refused: {problem}")
        body = json.dumps(webhook_payload(rollout, call), separators=(",", ":")).encode()
        try:
            headers = await self._headers(rollout, call, body)
        except AuthError as exc:
            return WebhookResult(False, None, str(exc))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(hook.retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff),
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        last = WebhookResult(False, None, "no attempt finished")
        try:
            async with asyncio.timeout(self.settings.call_deadline):
                async for attempt in retrying:
                    with attempt:
                        return await self._once(hook.url, body, headers, hook.timeout)
        except _Retryable as exc:
            last = exc.result
        except TimeoutError:
            last = WebhookResult(
                False, None, f"no answer within the call's deadline ({self.settings.call_deadline:g}s)"
            )
        log.warning("webhook failed", key=call.key, rollout=rollout.metadata.name, message=last.message)
        return last


CallId = tuple[str, str, str]  # (namespace, rollout name, call key)
# Results delivered whether or not the call is due again: a rollback hook is due only at an analysis tick,
# and its answer arrives after that tick's reconcile.
_POLLED = "rollback/"


class WebhookRunner:
    """Webhook calls beside the workers (see the module's doc). `notify(target)` re-queues a target when one
    of its calls has finished."""

    def __init__(
        self, caller: WebhookCaller, notify: Callable[[Any], None], per_namespace: int | None = None
    ) -> None:
        self.caller = caller
        self.notify = notify
        self.per_namespace = per_namespace or caller.settings.per_namespace
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._running: dict[CallId, asyncio.Task[None]] = {}
        self._done: dict[CallId, WebhookResult] = {}

    @staticmethod
    def _id(rollout: Rollout, key: str) -> CallId:
        return (rollout.metadata.namespace or "", rollout.metadata.name, key)

    def pending(self, rollout: Rollout) -> list[str]:
        ns, name = rollout.metadata.namespace or "", rollout.metadata.name
        return sorted(k for (n, r, k) in self._running if (n, r) == (ns, name))

    def collect(
        self, rollout: Rollout, due: Sequence[WebhookCall]
    ) -> tuple[dict[str, WebhookResult], list[WebhookCall]]:
        """The finished results this decision may use, and the due calls to start once the decision (which
        lists them in status.pendingWebhooks) is recorded."""
        out: dict[str, WebhookResult] = {}
        starting: list[WebhookCall] = []
        for call in due:
            cid = self._id(rollout, call.key)
            if cid in self._done:
                out[call.key] = self._done.pop(cid)
            elif cid not in self._running:
                starting.append(call)
        analysing = rollout.status.phase in (Phase.PROGRESSING, Phase.PAUSED)
        owner = self._id(rollout, "")[:2]
        for cid in [c for c in self._done if c[:2] == owner and c[2].startswith(_POLLED)]:
            answer = self._done.pop(cid)
            if analysing:  # a rollback hook that answers after its rollout ended asks for nothing
                out[cid[2]] = answer
        return out, starting

    def start(self, target: Any, rollout: Rollout, calls: Sequence[WebhookCall]) -> None:
        for call in calls:
            cid = self._id(rollout, call.key)
            if cid not in self._running and cid not in self._done:
                self._start(target, rollout, call, cid)

    def _start(self, target: Any, rollout: Rollout, call: WebhookCall, cid: CallId) -> None:
        slots = self._slots.setdefault(cid[0], asyncio.Semaphore(self.per_namespace))

        async def run() -> None:
            result = WebhookResult(False, None, "the call did not finish")
            try:
                async with slots:
                    result = await self.caller.call(rollout, call)
            except Exception as exc:  # the caller returns values; this only guards the runner's own state
                log.exception("webhook call crashed", key=call.key)
                result = WebhookResult(False, None, f"{type(exc).__name__}: {exc}")
            finally:
                self._running.pop(cid, None)
            self._done[cid] = result
            self.notify(target)

        self._running[cid] = asyncio.create_task(run(), name=f"webhook {'/'.join(cid)}")

    def forget(self, rollout: Rollout) -> None:
        """Drop what a finished rollout left: results nobody will ask for."""
        ns, name = rollout.metadata.namespace or "", rollout.metadata.name
        for cid in [c for c in self._done if c[:2] == (ns, name)]:
            del self._done[cid]

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def close(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        await self.caller.close()
