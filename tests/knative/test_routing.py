"""Resolution of spec.traffic to status.traffic, and the data-plane split with tag-header routing."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from rollout.knative.routing import (
    ConfigurationView,
    RevisionView,
    ServedTraffic,
    TrafficResolution,
    pick_revision,
    resolve_traffic,
    route_traffic_for_service,
    served_traffic,
)
from rollout.knative.traffic import default_traffic

REVS = {
    "hello-00001": RevisionView("hello-00001", "hello", "True", service="hello"),
    "hello-00002": RevisionView("hello-00002", "hello", "True", service="hello"),
    "hello-00003": RevisionView("hello-00003", "hello", "Unknown", service="hello"),
    "hello-00004": RevisionView("hello-00004", "hello", "False", service="hello"),
    "other-00001": RevisionView("other-00001", "other", "True", service="other"),
}
CONFIGS = {"hello": ConfigurationView("hello", "hello-00002", "True")}


def resolve(
    service_traffic: Any, configs: dict[str, ConfigurationView] = CONFIGS, owner: str = "hello"
) -> TrafficResolution:
    spec = route_traffic_for_service(default_traffic(service_traffic, in_service=True), "hello")
    return resolve_traffic(
        spec,
        route="hello",
        namespace="team",
        domain="example.com",
        revisions=REVS,
        configurations=configs,
        owner_service=owner,
    )


def test_service_route_follows_configuration() -> None:
    spec = route_traffic_for_service(default_traffic(None, in_service=True), "hello")
    assert spec == [{"latestRevision": True, "percent": 100, "configurationName": "hello"}]


def test_latest_revision_resolves_to_latest_ready() -> None:
    result = resolve(None)
    assert result.problem is None
    assert result.traffic == [{"revisionName": "hello-00002", "latestRevision": True, "percent": 100}]


def test_tags_get_urls_and_configuration_is_dropped() -> None:
    result = resolve(
        [
            {"revisionName": "hello-00001", "percent": 90, "tag": "stable"},
            {"latestRevision": True, "percent": 10, "tag": "canary"},
        ]
    )
    assert result.traffic == [
        {
            "revisionName": "hello-00001",
            "latestRevision": False,
            "percent": 90,
            "tag": "stable",
            "url": "http://stable-hello.team.example.com",
        },
        {
            "revisionName": "hello-00002",
            "latestRevision": True,
            "percent": 10,
            "tag": "canary",
            "url": "http://canary-hello.team.example.com",
        },
    ]


def test_same_revision_and_tag_entries_are_merged() -> None:
    result = resolve(
        [{"revisionName": "hello-00001", "percent": 50}, {"revisionName": "hello-00001", "percent": 50}]
    )
    assert result.traffic == [{"revisionName": "hello-00001", "latestRevision": False, "percent": 100}]


def test_zero_percent_tag_without_percent_keeps_no_percent() -> None:
    result = resolve(
        [{"revisionName": "hello-00001", "percent": 100}, {"revisionName": "hello-00002", "tag": "next"}]
    )
    assert result.traffic is not None
    assert "percent" not in result.traffic[1]


def test_unready_revision_keeps_old_traffic_unknown() -> None:
    result = resolve(
        [{"revisionName": "hello-00001", "percent": 90}, {"revisionName": "hello-00003", "percent": 10}]
    )
    assert result.traffic is None
    assert result.problem is not None
    assert (result.problem.status, result.problem.reason) == ("Unknown", "RevisionMissing")
    assert result.problem.message == 'Revision "hello-00003" is not yet ready.'


def test_failed_revision_outranks_unready_one() -> None:
    result = resolve(
        [
            {"revisionName": "hello-00003", "percent": 50},
            {"revisionName": "hello-00004", "percent": 50},
        ]
    )
    assert result.problem is not None
    assert (result.problem.status, result.problem.reason) == ("False", "RevisionMissing")
    assert result.problem.message == 'Revision "hello-00004" failed to become ready.'


def test_missing_revision() -> None:
    result = resolve([{"revisionName": "hello-00009", "percent": 100}])
    assert result.problem is not None
    assert result.problem.reason == "RevisionMissing"
    assert result.problem.message == 'Revision "hello-00009" referenced in traffic not found.'


def test_configuration_without_ready_revision() -> None:
    waiting = {"hello": ConfigurationView("hello", "", "Unknown")}
    result = resolve(None, configs=waiting)
    assert result.problem is not None
    assert result.problem.status == "Unknown"
    assert result.problem.message == 'Configuration "hello" is waiting for a Revision to become ready.'
    failed = {"hello": ConfigurationView("hello", "", "False")}
    result = resolve(None, configs=failed)
    assert result.problem is not None
    assert result.problem.message == 'Configuration "hello" does not have any ready Revision.'


def test_service_route_may_not_use_another_services_revision() -> None:
    result = resolve([{"revisionName": "other-00001", "percent": 100}])
    assert result.problem is not None
    assert (result.problem.status, result.problem.reason) == ("False", "RevisionNotOwned")
    # a standalone Route may
    assert resolve([{"revisionName": "other-00001", "percent": 100}], owner="").problem is None


# --- data plane --------------------------------------------------------------------------------------


def test_served_split_consolidates_per_revision() -> None:
    served = served_traffic(
        [
            {"revisionName": "a", "percent": 80},
            {"revisionName": "b", "percent": 20, "tag": "canary"},
            {"revisionName": "a", "percent": 0, "tag": "stable"},
        ]
    )
    assert served.split == (("a", 80), ("b", 20))
    assert served.tags == {"canary": "b", "stable": "a"}


def test_single_revision_gets_everything() -> None:
    served = served_traffic([{"revisionName": "a", "percent": 0, "tag": "x"}])
    assert served.split == (("a", 100),)


def test_pick_revision_follows_percents() -> None:
    served = ServedTraffic(split=(("a", 70), ("b", 30)))
    rng = random.Random(7)
    counts = Counter(pick_revision(served, u=rng.random()) for _ in range(20000))
    assert abs(counts["b"] / 20000 - 0.30) < 0.02
    assert pick_revision(served, u=0.0) == "a"
    assert pick_revision(served, u=0.6999) == "a"
    assert pick_revision(served, u=0.7) == "b"


def test_tag_header_routes_to_tag_and_unknown_tag_falls_through() -> None:
    served = ServedTraffic(split=(("a", 100),), tags={"canary": "b"})
    assert pick_revision(served, u=0.5, tag="canary") == "b"
    assert pick_revision(served, u=0.5, tag="nope") == "a"
    assert pick_revision(served, u=0.5, tag="canary", tag_header_routing=False) == "a"
