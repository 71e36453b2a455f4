"""Calling the policy's webhooks: POST a JSON description of the rollout, with the hook's timeout and retries
(tenacity); 2xx is success. Results go to `decide` by key; a hook never raises into the reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from rollout.api.rollout import Rollout
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


class _Retryable(Exception):
    def __init__(self, result: WebhookResult) -> None:
        super().__init__(result.message)
        self.result = result


class WebhookCaller:
    def __init__(self, *, backoff: float = 0.2, max_backoff: float = 2.0) -> None:
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "knative-rollout"})
        return self._session

    async def _once(self, url: str, body: Mapping[str, Any], seconds: float) -> WebhookResult:
        try:
            async with self._client().post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=seconds)
            ) as resp:
                text = (await resp.text())[:512]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Retryable(WebhookResult(False, None, f"{type(exc).__name__}: {exc}".strip(": "))) from None
        result = WebhookResult(200 <= resp.status < 300, resp.status, text.strip())
        if resp.status >= 500 or resp.status == 429:
            raise _Retryable(result)
        return result

    async def call(self, rollout: Rollout, call: WebhookCall) -> WebhookResult:
        hook = call.webhook
        body = webhook_payload(rollout, call)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(hook.retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff),
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(hook.url, body, hook.timeout)
        except _Retryable as exc:
            result = exc.result
            log.warning("webhook failed", key=call.key, rollout=rollout.metadata.name, message=result.message)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def call_all(self, rollout: Rollout, calls: Sequence[WebhookCall]) -> dict[str, WebhookResult]:
        results = await asyncio.gather(*(self.call(rollout, c) for c in calls))
        return {c.key: r for c, r in zip(calls, results, strict=True)}
