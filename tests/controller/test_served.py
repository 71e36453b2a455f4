"""ServedClock: since when each target has served its current split, as the informer events showed it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rollout.controller.served import ServedClock
from rollout.controller.views import ObjectKey, observed_traffic, target_view
from tests.engine.world import T0

KEY = ObjectKey("Service", "default", "hello")


def service(percents: dict[str, int], *, ready: bool = True, generation: int = 2, observed: int = 2) -> Any:
    return {
        "kind": "Service",
        "metadata": {"name": "hello", "namespace": "default", "generation": generation},
        "status": {
            "observedGeneration": observed,
            "traffic": [{"revisionName": name, "percent": p} for name, p in percents.items()],
            "conditions": [{"type": "RoutesReady", "status": "True" if ready else "False"}],
        },
    }


def served(obj: Any) -> Any:
    return observed_traffic(target_view(obj))


def test_the_first_event_showing_a_split_counts_not_the_later_ones() -> None:
    clock = ServedClock()
    split = service({"a": 90, "b": 10})
    clock.note("MODIFIED", split, T0)
    clock.note("MODIFIED", service({"a": 90, "b": 10}), T0 + timedelta(seconds=3))  # e.g. replica counts
    assert clock.since(KEY, served(split)) == T0


def test_a_new_split_or_readiness_restarts_the_clock() -> None:
    clock = ServedClock()
    clock.note("MODIFIED", service({"a": 90, "b": 10}, ready=False), T0)
    ready = service({"a": 90, "b": 10})
    clock.note("MODIFIED", ready, T0 + timedelta(seconds=1))
    assert clock.since(KEY, served(ready)) == T0 + timedelta(seconds=1)
    moved = service({"a": 70, "b": 30})
    clock.note("MODIFIED", moved, T0 + timedelta(seconds=2))
    assert clock.since(KEY, served(ready)) is None  # no longer what the target serves
    assert clock.since(KEY, served(moved)) == T0 + timedelta(seconds=2)


def test_nothing_for_a_split_not_served_an_older_generation_or_a_deleted_target() -> None:
    clock = ServedClock()
    stale = service({"a": 100}, generation=3, observed=2)  # status of the previous generation
    clock.note("MODIFIED", stale, T0)
    assert clock.since(KEY, served(stale)) is None
    ready = service({"a": 100})
    clock.note("ADDED", ready, T0)
    assert clock.since(ObjectKey("Route", "default", "hello"), served(ready)) is None
    clock.note("DELETED", ready, T0)
    assert clock.since(KEY, served(ready)) is None and len(clock) == 0
