"""Drift: spec.traffic of a target under an active rollout differs from the rollout's plan, and the controller
did not write it. Who changed it is read from metadata.managedFields. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollout.api.rollout import TrafficEntry
from rollout.controller.layout import same_traffic
from rollout.controller.views import entries_summary
from rollout.engine.plans import TrafficPlan
from rollout.kube.traffic import desired_block


@dataclass(frozen=True)
class TrafficWriter:
    manager: str
    operation: str = ""
    time: str = ""


@dataclass(frozen=True)
class Drift:
    writer: TrafficWriter | None
    expected: str  # summary of what the controller last wrote
    found: str  # summary of what spec.traffic holds now

    def message(self) -> str:
        who = "an unknown writer"
        if self.writer is not None:
            who = f"{self.writer.manager!r}"
            if self.writer.operation:
                who += f" ({self.writer.operation}"
                who += f" at {self.writer.time})" if self.writer.time else ")"
        return f"spec.traffic was changed by {who} from [{self.expected}] to [{self.found}]; restored the rollout's plan"


def touches_traffic(fields: Any) -> bool:
    if not isinstance(fields, Mapping):
        return False
    spec = fields.get("f:spec")
    return isinstance(spec, Mapping) and "f:traffic" in spec


def last_traffic_writer(managed_fields: Sequence[Mapping[str, Any]]) -> TrafficWriter | None:
    """The field manager that most recently wrote spec.traffic (RFC 3339 times sort as text)."""
    best: TrafficWriter | None = None
    for entry in managed_fields:
        if entry.get("subresource") or not touches_traffic(entry.get("fieldsV1")):
            continue
        writer = TrafficWriter(
            manager=str(entry.get("manager") or "?"),
            operation=str(entry.get("operation") or ""),
            time=str(entry.get("time") or ""),
        )
        if best is None or writer.time >= best.time:
            best = writer
    return best


def detect_drift(
    current: Sequence[Mapping[str, Any]],
    last_written: Sequence[TrafficEntry],
    managed_fields: Sequence[Mapping[str, Any]],
    field_manager: str,
    *,
    served: bool,
    configuration: str | None = None,
) -> Drift | None:
    """Someone else rewrote spec.traffic away from the rollout's plan `last_written` (its status.traffic).

    Drift needs the plan to have been served (`served`: Knative showed it, so spec.traffic held it) and
    changed since. The status is written before the traffic, so spec.traffic may still hold the previous
    plan while the status holds the next one (a write in flight, or lost to a crash or a conflict): the
    last writer of spec.traffic then is whoever wrote before us, who changed nothing of ours. With
    managedFields, the last writer of spec.traffic names who changed it (no drift when it is the
    controller). None when spec.traffic is the plan (plus users' 0% entries) or there is no plan yet.
    `configuration`: a standalone Route's, which its `latest` entry names."""
    if not last_written or not served:
        return None
    expected = desired_block(TrafficPlan(tuple(last_written)), current, configuration)
    if same_traffic(current, expected):
        return None
    writer = last_traffic_writer(managed_fields)
    if writer is not None and writer.manager == field_manager:
        return None
    return Drift(writer, entries_summary(expected), entries_summary(current))
