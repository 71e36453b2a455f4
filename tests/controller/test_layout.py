from rollout.controller.layout import Adopt, Managed, Unmanageable, Waiting, classify, same_traffic
from rollout.controller.views import observed_traffic
from tests.controller.objects import view

PINNED = [
    {"revisionName": "hello-00001", "percent": 100, "tag": "stable"},
    {"latestRevision": True, "percent": 0, "tag": "latest"},
]


def test_default_traffic_adopts_what_knative_serves() -> None:
    # a Service without a traffic block: Knative's default (latest at 100%)
    assert classify(view()) == Adopt("hello-00001")


def test_single_named_revision_is_adopted_once_served() -> None:
    spec = [{"revisionName": "hello-00001", "percent": 100}, {"revisionName": "hello-00001", "tag": "v1"}]
    assert classify(view(spec_traffic=spec)) == Adopt("hello-00001")
    lagging = view(
        spec_traffic=[{"revisionName": "hello-00003", "percent": 100}],
        status_traffic=[{"revisionName": "hello-00001", "percent": 100}],
    )
    assert isinstance(classify(lagging), Waiting)


def test_pinned_target_is_managed_and_stable_is_the_stable_tag() -> None:
    assert classify(view(spec_traffic=PINNED)) == Managed("hello-00001")


def test_interrupted_rollout_split_among_rollout_tags_is_managed() -> None:
    spec = [
        {"revisionName": "hello-00001", "percent": 90, "tag": "stable"},
        {"revisionName": "hello-00002", "percent": 10, "tag": "canary"},
        {"latestRevision": True, "percent": 0, "tag": "latest"},
    ]
    assert classify(view(spec_traffic=spec)) == Managed("hello-00001")


def test_hand_made_three_way_split_is_unmanageable_and_says_why() -> None:
    spec = [
        {"revisionName": "hello-00001", "percent": 50},
        {"revisionName": "hello-00002", "percent": 30},
        {"revisionName": "hello-00003", "percent": 20},
    ]
    layout = classify(view(spec_traffic=spec))
    assert isinstance(layout, Unmanageable)
    assert "3 entries" in layout.reason and "hello-00002 30%" in layout.reason


def test_foreign_entry_with_traffic_next_to_stable_is_unmanageable() -> None:
    spec = [*PINNED[:1], {"revisionName": "hello-00002", "percent": 0, "tag": "v2"}]
    assert classify(view(spec_traffic=spec)) == Managed("hello-00001")  # 0% user tags are fine
    spec = [
        {"revisionName": "hello-00001", "percent": 80, "tag": "stable"},
        {"revisionName": "hello-00002", "percent": 20, "tag": "mine"},
    ]
    assert isinstance(classify(view(spec_traffic=spec)), Unmanageable)


def test_nothing_served_yet_waits() -> None:
    assert isinstance(classify(view(status_traffic=[])), Waiting)


def test_same_traffic_ignores_order_defaults_and_url() -> None:
    a = [{"revisionName": "r1", "percent": 100, "tag": "stable"}, {"latestRevision": True, "tag": "latest"}]
    b = [
        {"tag": "latest", "latestRevision": True, "percent": 0, "url": "http://latest-x"},
        {"revisionName": "r1", "latestRevision": False, "percent": 100, "tag": "stable"},
    ]
    assert same_traffic(a, b)
    assert not same_traffic(a, [{**b[0]}, {**b[1], "percent": 90}])


def test_observed_traffic_is_served_only_when_routes_ready_for_this_generation() -> None:
    status = [{"revisionName": "hello-00001", "percent": 100, "tag": "stable"}]
    served = observed_traffic(view(status_traffic=status))
    assert (
        served.ready and served.percents == {"hello-00001": 100} and served.tags == {"stable": "hello-00001"}
    )
    assert not observed_traffic(view(status_traffic=status, generation=2, observed_generation=1)).ready
    assert not observed_traffic(view(status_traffic=status, routes_ready="False")).ready


def test_observed_traffic_fails_only_when_the_current_generation_says_false() -> None:
    status = [{"revisionName": "hello-00001", "percent": 100, "tag": "stable"}]
    assert observed_traffic(view(status_traffic=status, routes_ready="False")).failed
    # still reconciling the last write: not served, but not failed either
    assert not observed_traffic(view(status_traffic=status, routes_ready="Unknown")).failed
    stale = view(status_traffic=status, routes_ready="False", generation=2, observed_generation=1)
    assert not observed_traffic(stale).failed and not observed_traffic(stale).ready
