"""`rollout controller` flags turned into the controller's settings."""

from rollout.cli.controller import config_from
from rollout.cli.main import build_parser


def _config(argv: list[str], env: dict[str, str]) -> str:
    args = build_parser().parse_args(["controller", *argv])
    return config_from(args, env).lease.namespace


def test_the_lease_lives_in_the_pods_namespace_unless_told_otherwise() -> None:
    pod = {"POD_NAMESPACE": "knative-rollout"}
    assert _config([], pod) == "knative-rollout"  # the chart sets POD_NAMESPACE from the downward API
    assert _config(["--namespace", "team-a"], pod) == "knative-rollout"
    assert _config(["--lease-namespace", "leases", "--namespace", "team-a"], pod) == "leases"
    assert _config(["--namespace", "team-a", "--namespace", "team-b"], {}) == "team-a"  # outside a pod
    assert _config([], {}) == "default"
