"""KubeClient's retries, against a scripted stand-in for kubernetes-asyncio's ApiClient: transient answers
(0, 429, 5xx) are retried with backoff or the server's Retry-After, up to `attempts`; others fail at once; a
write checks the lease fence before every attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from rollout.kube.client import KubeClient, KubeError, RetrySettings
from rollout.kube.resources import SERVICES


class Answer:
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.reason = "scripted"
        self._body = orjson.dumps(body)

    async def read(self) -> bytes:
        return self._body

    def release(self) -> None:
        pass


class ScriptedApi:
    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    async def call_api(self, path: str, method: str, **_: Any) -> Answer:
        self.calls.append((method, path))
        return self.answers.pop(0)


def failure(code: int, retry_after: str | None = None) -> Answer:
    headers = {"Retry-After": retry_after} if retry_after else None
    return Answer(code, {"kind": "Status", "code": code, "reason": "Scripted", "message": "no"}, headers)


OK = Answer(200, {"metadata": {"name": "hello", "resourceVersion": "7"}})


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    waited: list[float] = []
    real_sleep = asyncio.sleep

    async def record(seconds: float, *args: Any) -> None:
        waited.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    yield waited


def client(answers: list[Answer], fence: list[int]) -> tuple[KubeClient, ScriptedApi]:
    api = ScriptedApi(answers)
    retry = RetrySettings(attempts=4, base=0.05, cap=1.0)
    kube = KubeClient(api, fence=lambda ns: fence.append(1), retry=retry)  # type: ignore[arg-type]
    return kube, api


async def patch(kube: KubeClient) -> Any:
    return await kube.merge_patch(SERVICES, "default", "hello", {"spec": {"traffic": []}})


async def test_transient_failures_are_retried_with_backoff_and_the_fence_before_each_attempt(
    sleeps: list[float],
) -> None:
    fence: list[int] = []
    kube, api = client([failure(503), failure(500), OK], fence)
    assert (await patch(kube))["metadata"]["resourceVersion"] == "7"
    assert len(api.calls) == 3 and api.calls[0][0] == "PATCH"
    assert sleeps == [0.05, 0.1]
    assert len(fence) == 3  # before the first attempt and before each retry


async def test_retry_after_is_honoured_up_to_its_cap(sleeps: list[float]) -> None:
    kube, _ = client([failure(429, "30"), failure(429, "0.5"), OK], [])
    await patch(kube)
    assert sleeps == [2.0, 0.5]


async def test_attempts_are_bounded_and_the_last_error_is_raised(sleeps: list[float]) -> None:
    kube, api = client([failure(503), failure(502), failure(504), failure(500)], [])
    with pytest.raises(KubeError) as caught:
        await patch(kube)
    assert caught.value.status == 500 and len(api.calls) == 4
    assert sleeps == [0.05, 0.1, 0.2]


async def test_a_definite_answer_is_not_retried(sleeps: list[float]) -> None:
    kube, api = client([failure(409), OK], [])
    with pytest.raises(KubeError) as caught:
        await patch(kube)
    assert caught.value.conflict and len(api.calls) == 1 and sleeps == []
