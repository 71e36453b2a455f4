"""Names Knative Serving uses on its objects (labels, annotations), and the sandbox's own annotations."""

from __future__ import annotations

GROUP = "serving.knative.dev"
API_VERSION = f"{GROUP}/v1"

# labels Knative puts on the objects it creates
SERVICE_LABEL = f"{GROUP}/service"
SERVICE_UID_LABEL = f"{GROUP}/serviceUID"
CONFIGURATION_LABEL = f"{GROUP}/configuration"
CONFIGURATION_UID_LABEL = f"{GROUP}/configurationUID"
CONFIGURATION_GENERATION_LABEL = f"{GROUP}/configurationGeneration"
ROUTE_LABEL = f"{GROUP}/route"
ROUTING_STATE_LABEL = f"{GROUP}/routingState"
REVISION_LABEL = f"{GROUP}/revision"
VISIBILITY_LABEL = "networking.knative.dev/visibility"

# annotations
ROUTES_ANNOTATION = f"{GROUP}/routes"
ROUTING_STATE_MODIFIED_ANNOTATION = f"{GROUP}/routingStateModified"
ROLLOUT_DURATION_ANNOTATION = f"{GROUP}/rollout-duration"
AUTOSCALING_PREFIX = "autoscaling.knative.dev/"

# routingState values
ROUTING_PENDING = "pending"
ROUTING_ACTIVE = "active"
ROUTING_RESERVE = "reserve"

# The sandbox's own annotations (on a Service's spec.template.metadata.annotations, so they land on the
# Revision; documented in lab/rollout_lab/sandbox/README.md).
SANDBOX_PREFIX = "sandbox.knrollout.dev/"
FAIL_ANNOTATION = SANDBOX_PREFIX + "fail"  # ImagePullBackOff | ContainerMissing | CrashLoopBackOff
FAIL_MESSAGE_ANNOTATION = SANDBOX_PREFIX + "fail-message"
READY_DELAY_ANNOTATION = SANDBOX_PREFIX + "ready-delay"  # e.g. "5s": time until Ready (or failed)

# Annotations Knative never copies from a Service to its children.
_NOT_PROPAGATED = ("kubectl.kubernetes.io/last-applied-configuration",)


def propagated_annotations(annotations: dict[str, str] | None) -> dict[str, str]:
    """The Service annotations Knative copies onto the Configuration and the Route."""
    return {k: v for k, v in (annotations or {}).items() if k not in _NOT_PROPAGATED}
