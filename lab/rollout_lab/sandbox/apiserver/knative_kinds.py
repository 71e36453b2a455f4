"""Knative Serving's serving.knative.dev/v1 kinds as the sandbox serves them built in: names, printer
columns and (from `knative_schema`) a compact structural schema written here — the real CRDs are only
read by tests, to check that what we serve agrees with them."""

from __future__ import annotations

from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.apiserver.knative_schema import (
    configuration_schema,
    revision_schema,
    route_schema,
    service_schema,
)
from rollout_lab.sandbox.apiserver.resources import PrinterColumn, ResourceRegistry, ResourceSpec

CATEGORIES = ("all", "knative", "serving")
_READY = PrinterColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status")
_REASON = PrinterColumn("Reason", "string", ".status.conditions[?(@.type=='Ready')].reason")
_URL = PrinterColumn("URL", "string", ".status.url")
_LATEST_CREATED = PrinterColumn("LatestCreated", "string", ".status.latestCreatedRevisionName")
_LATEST_READY = PrinterColumn("LatestReady", "string", ".status.latestReadyRevisionName")


def knative_specs() -> list[ResourceSpec]:
    return [
        ResourceSpec(
            kinds.KSERVICES,
            builtin=False,
            schema=service_schema(),
            categories=CATEGORIES,
            printer_columns=(_URL, _LATEST_CREATED, _LATEST_READY, _READY, _REASON),
        ),
        ResourceSpec(
            kinds.CONFIGURATIONS,
            builtin=False,
            schema=configuration_schema(),
            categories=CATEGORIES,
            printer_columns=(_LATEST_CREATED, _LATEST_READY, _READY, _REASON),
        ),
        ResourceSpec(
            kinds.REVISIONS,
            builtin=False,
            schema=revision_schema(),
            categories=CATEGORIES,
            printer_columns=(
                PrinterColumn(
                    "Config Name", "string", ".metadata.labels['serving\\.knative\\.dev/configuration']"
                ),
                PrinterColumn(
                    "Generation",
                    "string",
                    ".metadata.labels['serving\\.knative\\.dev/configurationGeneration']",
                ),
                _READY,
                _REASON,
                PrinterColumn("Actual Replicas", "integer", ".status.actualReplicas"),
                PrinterColumn("Desired Replicas", "integer", ".status.desiredReplicas"),
            ),
        ),
        ResourceSpec(
            kinds.ROUTES,
            builtin=False,
            schema=route_schema(),
            categories=CATEGORIES,
            printer_columns=(_URL, _READY, _REASON),
        ),
    ]


def register_knative(registry: ResourceRegistry) -> None:
    for spec in knative_specs():
        registry.add(spec)
