from rollout.controller.routes import route_configuration

CONFIGS = {"shop-v1": "shop", "shop-v2": "shop", "cart-v1": "cart"}


def test_the_configuration_a_route_follows() -> None:
    of = CONFIGS.get
    assert route_configuration([{"configurationName": "shop", "percent": 100}], of).name == "shop"
    assert route_configuration([{"revisionName": "shop-v1", "percent": 100}], of).name == "shop"
    pinned = [
        {"revisionName": "shop-v1", "percent": 100, "tag": "stable"},
        {"latestRevision": True, "configurationName": "shop", "percent": 0, "tag": "latest"},
    ]
    assert route_configuration(pinned, of).name == "shop"


def test_no_single_configuration_says_why() -> None:
    of = CONFIGS.get
    mixed = route_configuration(
        [{"revisionName": "shop-v1", "percent": 100}, {"revisionName": "cart-v1"}], of
    )
    assert (
        mixed.name is None and mixed.problem is not None and "2 Configurations (cart, shop)" in mixed.problem
    )
    unknown = route_configuration([{"revisionName": "nope-v1", "percent": 100}], of)
    assert unknown.name is None and unknown.problem is not None and "nope-v1" in unknown.problem


def test_a_running_rollouts_revisions_decide() -> None:
    """Mid-rollout, someone rewrote the Route to another Configuration: the rollout's own Configuration is
    still the one its plan (and its `latest` entry) follows."""
    rewritten = [{"configurationName": "cart", "percent": 100}]
    assert route_configuration(rewritten, CONFIGS.get, ("shop-v2", "shop-v1")).name == "shop"
