"""Every request a namespaced object can make the controller send (webhooks, notifications) leaves through
here, contained: only to destinations the admins allow (rollout.controller.egress, checked on every resolved
address), no redirects, the answer cut at a few KiB while reading, retries with backoff inside one overall
deadline, headers from opted-in Secrets only. Never raises: the answer is a value."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from rollout.analysis.auth import AuthError, SecretReader, SecretRefReader, header_value
from rollout.api.source import HeaderValue
from rollout.controller.egress import Destinations, GuardedResolver, refusal
from rollout.engine.inputs import WebhookResult

SIGNATURE_HEADER = "X-Rollout-Signature"  # "sha256=" + hex HMAC of "<timestamp>.<body>"
TIMESTAMP_HEADER = "X-Rollout-Timestamp"  # unix seconds, so receivers can refuse replays
MAX_ANSWER_BYTES = 4096  # of an answer, only this much is read (a status message keeps 512 characters)


@dataclass(frozen=True)
class Attempts:
    timeout: float  # one attempt
    retries: int  # after the first attempt
    deadline: float  # the whole call, waits included


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed(key: bytes | None, body: bytes) -> dict[str, str]:
    """The signature headers of `body`, when the admins set a signing key (HMAC-SHA256)."""
    if key is None:
        return {}
    stamp = str(int(time.time()))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(key, stamp, body)}


class _Retryable(Exception):
    def __init__(self, result: WebhookResult) -> None:
        super().__init__(result.message)
        self.result = result


async def secret_headers(
    secrets: SecretReader | None, namespace: str, headers: Sequence[HeaderValue], where: str
) -> dict[str, str]:
    """Literal headers, and those read from opted-in Secrets of `namespace`. Raises AuthError."""
    out: dict[str, str] = {}
    read = SecretRefReader(secrets, namespace, opt_in=True) if secrets is not None else None
    for i, header in enumerate(headers):
        at = f"{where}.headers[{i}] ({header.name})"
        if header.secret_key_ref is None:
            out[header.name] = header.value or ""
        elif read is None:
            raise AuthError(f"{at}: this controller reads no Secrets for outside calls")
        else:
            out[header.name] = header_value(await read(header.secret_key_ref, at), at)
    return out


class Outbound:
    """A guarded HTTP client for one allow-list. `resolver`/`socket_factory` replace the DNS resolver and
    the socket creation (tests point names at 127.0.0.1 and refuse any other address)."""

    def __init__(
        self,
        destinations: Destinations,
        *,
        resolver: AbstractResolver | None = None,
        socket_factory: Callable[[Any], Any] | None = None,
        backoff: float = 0.2,
        max_backoff: float = 2.0,
    ) -> None:
        self.destinations = destinations
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
                resolver=GuardedResolver(self.destinations, inner),
                socket_factory=self._socket_factory,
                limit_per_host=8,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": "knative-rollout"}, trust_env=False
            )
        return self._session

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

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], attempts: Attempts
    ) -> WebhookResult:
        """POST `body`; 5xx, 429 and connection errors are retried with backoff until `attempts` run out."""
        problem = self.destinations.url_problem(url)
        if problem is not None:
            return WebhookResult(False, None, f"refused: {problem}")
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts.retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff),
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        try:
            async with asyncio.timeout(attempts.deadline):
                async for attempt in retrying:
                    with attempt:
                        return await self._once(url, body, headers, attempts.timeout)
        except _Retryable as exc:
            return exc.result
        except TimeoutError:
            return WebhookResult(
                False, None, f"no answer within the call's deadline ({attempts.deadline:g}s)"
            )
        return WebhookResult(False, None, "no attempt finished")
