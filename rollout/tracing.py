"""OpenTelemetry traces of the controller's work: a span for each reconcile, a `rollout.decide` span for each
decision (rollout, step, weights, verdicts, p-values), and beneath them the Kubernetes writes; an
`analysis.tick` span for each measured window with its Prometheus queries beneath.

Off by default. Until `install` is given a provider (`rollout controller --otlp-endpoint`), `span` hands back
one shared null context: no span objects, no context switches, so a controller without an endpoint pays a
flag check per call site. The SDK and the OTLP exporter are imported only when an endpoint is configured."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

INSTRUMENTATION = "knative-rollout"
Attributes = Mapping[str, Any]

_NULL = contextlib.nullcontext(None)


class _Installed:
    """The process' tracer: one per process, like its logging configuration."""

    tracer: trace.Tracer | None = None


def install(provider: trace.TracerProvider | None) -> None:
    """Trace through `provider` from now on; None turns tracing off."""
    _Installed.tracer = provider.get_tracer(INSTRUMENTATION) if provider is not None else None


def enabled() -> bool:
    return _Installed.tracer is not None


def _clean(attributes: Attributes) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int, float and sequences of one of them; None values are left out."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, Sequence) and not isinstance(value, str):
            items = [v for v in value if v is not None]
            if items:
                out[key] = items
        else:
            out[key] = value
    return out


@contextlib.contextmanager
def _span(name: str, attributes: Attributes) -> Iterator[trace.Span]:
    tracer = _Installed.tracer
    assert tracer is not None
    with tracer.start_as_current_span(name, attributes=_clean(attributes)) as current:
        yield current


def span(
    name: str, attributes: Attributes | None = None
) -> contextlib.AbstractContextManager[trace.Span | None]:
    """A span named `name` under the current one, or a null context while tracing is off. Exceptions mark
    the span as failed and propagate."""
    if _Installed.tracer is None:
        return _NULL
    return _span(name, attributes or {})


def annotate(current: trace.Span | None, attributes: Attributes) -> None:
    """Attributes known only at the end of the work (outcome, status code)."""
    if current is not None:
        current.set_attributes(_clean(attributes))


def otlp_provider(
    endpoint: str, *, sample_ratio: float = 1.0, service: str = INSTRUMENTATION
) -> TracerProvider:
    """A provider that batches spans to an OTLP/HTTP collector (`endpoint`, e.g. http://collector:4318),
    sampling `sample_ratio` of the traces that do not continue a sampled parent."""
    from importlib.metadata import version

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create({"service.name": service, "service.version": version("knative-rollout")})
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
