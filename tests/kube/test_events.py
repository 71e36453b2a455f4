from datetime import UTC, datetime
from typing import Any

from rollout.kube.client import KubeError
from rollout.kube.events import EventRecorder, InvolvedObject


class Calls:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.patched: list[tuple[str, dict[str, Any]]] = []
        self.missing = False

    async def create(self, resource: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        return body

    async def merge_patch(
        self, resource: Any, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        if self.missing:
            raise KubeError(404, "NotFound", "gone")
        self.patched.append((name, patch))
        return patch


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


SVC = InvolvedObject("serving.knative.dev/v1", "Service", "default", "hello", "uid-1")


def recorder(calls: Calls, clock: Clock) -> EventRecorder:
    wall = lambda: datetime(2026, 11, 25, 12, 0, int(clock.t) % 60, tzinfo=UTC)  # noqa: E731
    return EventRecorder(calls, instance="r1", min_interval=30, repeat_window=600, clock=clock, wall=wall)  # type: ignore[arg-type]


async def test_event_shape() -> None:
    calls, clock = Calls(), Clock()
    await recorder(calls, clock).record(SVC, "Warning", "TrafficDriftCorrected", "someone changed it")
    (event,) = calls.created
    assert event["involvedObject"] == {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "namespace": "default",
        "name": "hello",
        "uid": "uid-1",
    }
    assert (event["type"], event["reason"], event["count"]) == ("Warning", "TrafficDriftCorrected", 1)
    assert event["metadata"]["name"].startswith("hello.") and event["source"] == {
        "component": "knative-rollout"
    }
    assert event["reportingInstance"] == "r1" and event["firstTimestamp"] == event["lastTimestamp"]


async def test_repeats_are_aggregated_and_written_at_most_every_min_interval() -> None:
    calls, clock = Calls(), Clock()
    rec = recorder(calls, clock)
    for _ in range(5):
        await rec.record(SVC, "Warning", "PolicyInvalid", "bad")
        clock.t += 5
    assert len(calls.created) == 1 and calls.patched == []  # counted, not yet written
    clock.t = 40
    await rec.record(SVC, "Warning", "PolicyInvalid", "bad")
    ((name, patch),) = calls.patched
    assert name == calls.created[0]["metadata"]["name"] and patch["count"] == 6
    await rec.record(SVC, "Warning", "PolicyInvalid", "other message")
    assert len(calls.created) == 2  # a different message is a different event
    clock.t = 700  # past the repeat window: a fresh Event
    await rec.record(SVC, "Warning", "PolicyInvalid", "bad")
    assert len(calls.created) == 3


async def test_an_aggregated_event_that_was_deleted_is_created_again() -> None:
    calls, clock = Calls(), Clock()
    rec = recorder(calls, clock)
    await rec.record(SVC, "Normal", "TrafficPinned", "pinned")
    calls.missing = True
    clock.t = 31
    await rec.record(SVC, "Normal", "TrafficPinned", "pinned")
    assert len(calls.created) == 2
