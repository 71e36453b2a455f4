"""The Kubernetes resources the controller touches, as plain descriptors (no I/O).

Every API call the controller makes goes through `rollout.kube.client.KubeClient` with one of these
descriptors and a verb, so the set of (verb, resource) pairs is known from code (the Helm chart's RBAC is
checked against `CALLS`)."""

from __future__ import annotations

from dataclasses import dataclass

from rollout.api.common import GROUP, VERSION

KNATIVE_GROUP = "serving.knative.dev"


@dataclass(frozen=True)
class Resource:
    """One REST resource. `group` is "" for the core API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path, e.g. /apis/serving.knative.dev/v1/namespaces/ns/services/hello/status."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


SERVICES = Resource(KNATIVE_GROUP, "v1", "services", "Service")
ROUTES = Resource(KNATIVE_GROUP, "v1", "routes", "Route")
REVISIONS = Resource(KNATIVE_GROUP, "v1", "revisions", "Revision")
CONFIGURATIONS = Resource(KNATIVE_GROUP, "v1", "configurations", "Configuration")
POLICIES = Resource(GROUP, VERSION, "rolloutpolicies", "RolloutPolicy")
ROLLOUTS = Resource(GROUP, VERSION, "rollouts", "Rollout")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
EVENTS = Resource("", "v1", "events", "Event")
SECRETS = Resource("", "v1", "secrets", "Secret")
TOKEN_REVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", namespaced=False)
SUBJECT_ACCESS_REVIEWS = Resource(
    "authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False
)
CLUSTER_SOURCES = Resource(GROUP, VERSION, "clustermetricsources", "ClusterMetricSource", namespaced=False)

# Every (verb, resource) the controller uses, exactly (the Helm chart's RBAC rules must grant these and
# nothing else; tests/chart checks both ways); subresources as "rollouts/status".
CALLS: frozenset[tuple[str, str, str]] = frozenset(
    {
        # informers (list, watch); targets read past the informer (get); traffic patches
        *((verb, KNATIVE_GROUP, plural) for verb in ("list", "watch", "get", "patch") for plural in (
            "services", "routes")),
        ("list", KNATIVE_GROUP, "revisions"),  # an informer
        ("watch", KNATIVE_GROUP, "revisions"),
        ("patch", KNATIVE_GROUP, "revisions"),  # a pre-warm hold: min-scale on the candidate (strategy.prewarm)
        ("get", KNATIVE_GROUP, "configurations"),  # a standalone Route's latest created/ready revision
        ("list", GROUP, "rolloutpolicies"),  # an informer
        ("watch", GROUP, "rolloutpolicies"),
        ("patch", GROUP, "rolloutpolicies/status"),
        ("list", GROUP, "clustermetricsources"),  # an informer, cluster-wide
        ("watch", GROUP, "clustermetricsources"),
        *((verb, GROUP, "rollouts") for verb in ("list", "watch", "get", "create", "delete")),
        ("patch", GROUP, "rollouts/status"),
        *((verb, "coordination.k8s.io", "leases") for verb in ("get", "create", "update")),
        ("create", "", "events"),
        ("patch", "", "events"),
        ("get", "", "secrets"),
        # --metrics-auth kubernetes: whose token a scrape carries, and whether it may get /metrics
        ("create", "authentication.k8s.io", "tokenreviews"),
        ("create", "authorization.k8s.io", "subjectaccessreviews"),
    }
)  # fmt: skip
