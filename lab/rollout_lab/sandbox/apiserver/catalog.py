"""The registry a fresh sandbox serves: the built-in kinds and Knative Serving's."""

from __future__ import annotations

from rollout_lab.sandbox.apiserver import rbac, reviews
from rollout_lab.sandbox.apiserver.builtin import register_core
from rollout_lab.sandbox.apiserver.knative_kinds import register_knative
from rollout_lab.sandbox.apiserver.resources import ResourceRegistry


def default_registry(*, knative: bool = True) -> ResourceRegistry:
    """Core kinds (Namespaces, ConfigMaps, Secrets, Events, Leases), RBAC's roles and bindings, the access
    reviews and, unless `knative` is False, serving.knative.dev/v1 Services, Configurations, Revisions and
    Routes."""
    registry = ResourceRegistry()
    register_core(registry)
    for spec in (*rbac.specs(), *reviews.specs()):
        registry.add(spec)
    if knative:
        register_knative(registry)
    return registry
