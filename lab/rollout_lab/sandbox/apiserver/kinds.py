"""The resource types the sandbox serves built in (names only; their specs live in `builtin` and
`knative_kinds`)."""

from __future__ import annotations

from rollout_lab.sandbox.store_api import ResourceType

NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, singular="namespace",
                          short_names=("ns",), has_status=True)  # fmt: skip
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap", singular="configmap", short_names=("cm",),
                          has_status=False)  # fmt: skip
SECRETS = ResourceType("", "v1", "secrets", "Secret", singular="secret", has_status=False)
EVENTS = ResourceType("", "v1", "events", "Event", singular="event", short_names=("ev",), has_status=False)
EVENTS_V1 = ResourceType("events.k8s.io", "v1", "events", "Event", singular="event", short_names=("ev",),
                         has_status=False)  # fmt: skip
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease", singular="lease", has_status=False)
CRDS = ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                    namespaced=False, singular="customresourcedefinition", short_names=("crd", "crds"),
                    has_status=True)  # fmt: skip

KNATIVE_GROUP = "serving.knative.dev"
KSERVICES = ResourceType(KNATIVE_GROUP, "v1", "services", "Service", singular="service",
                         short_names=("kservice", "ksvc"))  # fmt: skip
CONFIGURATIONS = ResourceType(KNATIVE_GROUP, "v1", "configurations", "Configuration",
                              singular="configuration", short_names=("config", "cfg"))  # fmt: skip
REVISIONS = ResourceType(KNATIVE_GROUP, "v1", "revisions", "Revision", singular="revision",
                         short_names=("rev",))  # fmt: skip
ROUTES = ResourceType(KNATIVE_GROUP, "v1", "routes", "Route", singular="route", short_names=("rt",))

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
