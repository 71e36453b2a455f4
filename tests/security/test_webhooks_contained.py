"""A hostile policy's webhooks: refused destinations (metadata by address and by a name resolving to it,
loopback, ungranted hosts), redirects, huge answers, hanging receivers, credentials; what is allowed is
signed. Every call goes through a stub resolver and a socket factory that refuses any address off loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from rollout.api.policy import Webhook
from rollout.controller.egress import Destinations
from rollout.controller.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookCaller, WebhookSettings
from rollout.engine.inputs import WebhookResult
from rollout.engine.webhooks import WebhookCall
from tests.analysis.conftest import DictSecrets
from tests.controller.objects import rollout
from tests.local_http import serving
from tests.security.net import Attempts, StubResolver

NAMES = {
    "hooks.example.test": "127.0.0.1",
    "meta.hooks.example.test": "169.254.169.254",  # a granted suffix whose name points at the metadata service
    "private.hooks.example.test": "10.1.2.3",
    "localhost": "127.0.0.1",
}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[int, dict[str, Any]]]:
    seen: dict[str, Any] = {"paths": [], "headers": [], "bodies": []}

    async def record(request: web.Request) -> None:
        seen["paths"].append(request.path)
        seen["headers"].append(dict(request.headers))
        seen["bodies"].append(await request.read())

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="fine")

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPTemporaryRedirect("/ok")

    async def huge(request: web.Request) -> web.StreamResponse:
        await record(request)
        resp = web.StreamResponse()
        await resp.prepare(request)
        chunk = b"x" * 65536
        try:
            for _ in range(160):  # 10 MiB, unless the caller hangs up first
                await resp.write(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    async def hang(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(3600)
        return web.Response(text="never")

    app = web.Application()
    for path, handler in (("/ok", ok), ("/redirect", redirect), ("/huge", huge), ("/hang", hang)):
        app.router.add_post(path, handler)
    async with serving(app, shutdown_timeout=0.5) as url:
        yield int(url.rsplit(":", 1)[1]), seen


def hook(url: str, **extra: Any) -> WebhookCall:
    return WebhookCall(
        "step-0/check", Webhook.model_validate({"name": "check", "type": "step", "url": url, **extra})
    )


async def call(
    settings: WebhookSettings, url: str, secrets: DictSecrets | None = None, **extra: Any
) -> tuple[WebhookResult, Attempts]:
    attempts = Attempts()
    caller = WebhookCaller(
        settings,
        secrets=secrets,
        resolver=StubResolver(NAMES),
        socket_factory=attempts,
        backoff=0.01,
        max_backoff=0.02,
    )
    try:
        return await caller.call(rollout(), hook(url, **extra)), attempts
    finally:
        await caller.close()


GRANTED = WebhookSettings(Destinations.parse(["*.hooks.example.test", "hooks.example.test", "localhost"]))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local or cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "link-local or cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "link-local or cloud metadata"),
        ("http://meta.hooks.example.test/latest/", "resolves to 169.254.169.254"),
        ("http://127.0.0.1:{port}/ok", "loopback"),
        ("http://localhost:{port}/ok", "loopback"),  # named in the list, and still loopback
        ("http://10.1.2.3/ok", "not an allowed webhook destination"),
        ("http://evil.example.org/ok", "not an allowed webhook destination"),
    ],
)
async def test_refused_destinations_are_never_connected(
    receiver: tuple[int, dict[str, Any]], url: str, reason: str
) -> None:
    port, seen = receiver
    result, attempts = await call(GRANTED, url.format(port=port))
    assert not result.ok and result.message.startswith("refused:") and reason in result.message, result
    assert attempts.asked == [] and seen["paths"] == []  # no socket was even asked for


async def test_a_name_resolving_to_a_private_address_is_allowed_only_by_name() -> None:
    # granted by its suffix: the guard lets it through, and the test network refuses the socket
    result, attempts = await call(GRANTED, "http://private.hooks.example.test/ok", retries=0)
    assert not result.ok and attempts.refused == ["10.1.2.3"]


async def test_nothing_is_allowed_by_default(receiver: tuple[int, dict[str, Any]]) -> None:
    port, seen = receiver
    result, attempts = await call(WebhookSettings(), f"http://hooks.example.test:{port}/ok")
    assert not result.ok and "allows none" in result.message and "--webhook-allow" in result.message
    assert attempts.asked == [] and seen["paths"] == []


async def test_the_test_network_holds_even_when_the_guard_is_broken() -> None:
    """The net under every test above: with a guard that allows everything, the socket factory still refuses
    the metadata address, so no packet leaves loopback."""
    everything = WebhookSettings(Destinations.parse(["0.0.0.0/0", "::/0"]))
    result, attempts = await call(everything, "http://169.254.169.254/latest/meta-data/", retries=0)
    assert not result.ok and attempts.refused == ["169.254.169.254"]


LOCAL = WebhookSettings(Destinations.parse(["127.0.0.1/32"]), signing_key=b"0123456789abcdef-key")


async def test_redirects_are_not_followed(receiver: tuple[int, dict[str, Any]]) -> None:
    port, seen = receiver
    result, _ = await call(LOCAL, f"http://127.0.0.1:{port}/redirect")
    assert not result.ok and result.status_code == 307 and "redirects are not followed" in result.message
    assert seen["paths"] == ["/redirect"]  # /ok was never called


async def test_a_huge_answer_is_cut_while_reading(receiver: tuple[int, dict[str, Any]]) -> None:
    port, _ = receiver
    started = time.monotonic()
    result, _ = await call(LOCAL, f"http://127.0.0.1:{port}/huge")
    assert result.ok and len(result.message) <= 512
    assert time.monotonic() - started < 5


async def test_a_hanging_receiver_is_bounded_by_one_deadline(receiver: tuple[int, dict[str, Any]]) -> None:
    port, seen = receiver
    settings = WebhookSettings(LOCAL.destinations, call_deadline=1.0)
    started = time.monotonic()
    result, _ = await call(settings, f"http://127.0.0.1:{port}/hang", timeout="30s", retries=5)
    elapsed = time.monotonic() - started
    assert not result.ok and "deadline" in result.message
    assert elapsed < 3, elapsed  # 1s, not 6 attempts x 30s
    assert len(seen["paths"]) == 1


def test_the_schema_bounds_timeouts_and_retries() -> None:
    base = {"name": "a", "type": "step", "url": "http://hooks.example.test/"}
    for bad in ({"timeout": "8784h"}, {"timeout": "31s"}, {"retries": 11}):
        with pytest.raises(ValueError):
            Webhook.model_validate({**base, **bad})
    with pytest.raises(ValueError, match="credentials in a webhook URL"):
        Webhook.model_validate({**base, "url": "https://user:pw@hooks.example.test/"})


async def test_the_body_is_signed_and_credentials_come_from_opted_in_secrets(
    receiver: tuple[int, dict[str, Any]],
) -> None:
    port, seen = receiver
    secrets = DictSecrets(
        {("default", "hook-token"): {"token": b"s3cret"}, ("default", "db"): {"password": b"hunter2"}},
        private=frozenset({("default", "db")}),
    )
    header = {"name": "Authorization", "secretKeyRef": {"name": "hook-token", "key": "token"}}
    result, _ = await call(LOCAL, f"http://127.0.0.1:{port}/ok", secrets, headers=[header])
    assert result.ok
    sent, body = seen["headers"][-1], seen["bodies"][-1]
    assert sent["Authorization"] == "s3cret"
    stamp = sent[TIMESTAMP_HEADER]
    expected = hmac.new(b"0123456789abcdef-key", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert sent[SIGNATURE_HEADER] == f"sha256={expected}"
    # a Secret that did not opt in is never read for the policy, and nothing is sent
    private = {"name": "Authorization", "secretKeyRef": {"name": "db", "key": "password"}}
    result, attempts = await call(LOCAL, f"http://127.0.0.1:{port}/ok", secrets, headers=[private])
    assert (
        not result.ok and "has not opted in" in result.message and "kubectl label secret db" in result.message
    )
    assert attempts.asked == [] and len(seen["paths"]) == 1
    assert all("hunter2" not in str(h) for h in seen["headers"])
