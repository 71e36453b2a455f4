"""rollout.controller.expectations: each rule of its docstring, on its own."""

from __future__ import annotations

from typing import Any

from rollout.controller.expectations import Expectations
from rollout.controller.views import ObjectKey

KEY = ObjectKey("Service", "shop", "web")


def svc(rv: str, weight: int = 10) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": "web", "resourceVersion": rv},
        "spec": {"traffic": [{"revisionName": "web-2", "percent": weight}]},
    }


def rollout(rv: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": "web-00002.1", "resourceVersion": rv}}


class Events:
    def __init__(self) -> None:
        self.delivered: list[str] = []

    def deliver(self, what: str) -> Any:
        return lambda: self.delivered.append(what)


def test_a_cached_version_our_write_replaced_reads_as_the_writes_answer() -> None:
    exp = Expectations()
    exp.note_written("Service", "5", svc("6", weight=30))
    assert exp.fresher("Service", svc("5"))["metadata"]["resourceVersion"] == "6"
    # once the cache is past our write, the cache wins and the answer is forgotten
    assert exp.fresher("Service", svc("7"))["metadata"]["resourceVersion"] == "7"
    assert exp.fresher("Service", svc("5"))["metadata"]["resourceVersion"] == "5"


def test_the_echo_of_our_write_queues_nothing_and_anything_else_does() -> None:
    exp, events = Expectations(), Events()
    exp.note_written("Service", "5", svc("6"))
    exp.observe(KEY, "Service", svc("6"), events.deliver("echo"), created=False)
    exp.observe(KEY, "Service", svc("7"), events.deliver("someone else"), created=False)
    assert events.delivered == ["someone else"]


def test_the_echo_of_our_create_is_recognised_once() -> None:
    exp, events = Expectations(), Events()
    exp.note_created("Rollout", rollout("9"))
    exp.observe(KEY, "Rollout", rollout("9"), events.deliver("first"), created=True)
    exp.observe(KEY, "Rollout", rollout("9"), events.deliver("again"), created=True)
    assert events.delivered == ["again"]


def test_an_event_that_beats_the_writes_answer_waits_for_the_reconcile() -> None:
    running = {KEY}
    exp, events = Expectations(running=lambda key: key in running), Events()
    exp.observe(KEY, "Service", svc("6"), events.deliver("the echo, early"), created=False)
    exp.observe(KEY, "Service", svc("7"), events.deliver("a change by someone"), created=False)
    exp.observe(
        ObjectKey("Service", "shop", "other"), "Service", svc("3"), events.deliver("other"), created=False
    )
    assert events.delivered == ["other"]  # another key's event is not held
    exp.note_written("Service", "5", svc("6"))  # the answer arrives while the reconcile still runs
    running.clear()
    exp.release(KEY)
    assert events.delivered == ["other", "a change by someone"]
    exp.release(KEY)  # nothing is delivered twice
    assert events.delivered == ["other", "a change by someone"]


def test_memory_is_bounded_and_forgetting_only_costs_a_reconcile() -> None:
    exp, events = Expectations(limit=2), Events()
    for n in range(3):
        name = {"metadata": {"namespace": "shop", "name": f"s{n}", "resourceVersion": "2"}}
        exp.note_written("Service", "1", name)
    first = {"metadata": {"namespace": "shop", "name": "s0", "resourceVersion": "2"}}
    exp.observe(KEY, "Service", first, events.deliver("forgotten echo"), created=False)
    assert events.delivered == ["forgotten echo"]
