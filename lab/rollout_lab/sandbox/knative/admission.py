"""Knative's defaulting and validating webhooks for Service, Configuration, Route and Revision, as an
`Admission` the sandbox store runs before it persists a write.

What it does, as Knative v1.23 does:
- defaulting: a Service's traffic (`[{latestRevision: true, percent: 100}]` when absent, `latestRevision`
  from `revisionName`), and the revision template's spec defaults (containerConcurrency 0, timeoutSeconds
  300, enableServiceLinks false, container name `user-container`, TCP readiness probe);
- validation: the traffic rules of `rollout.knative.traffic`; a user-chosen revision name must be a DNS-1035
  label starting with `{parent}-`; changing the template while keeping a user-chosen name is rejected; a
  template needs a container with an image; a Revision's spec is immutable.
- Unknown fields inside traffic entries are dropped, as a real API server prunes fields its CRD schema does
  not declare (kubectl's strict field validation would reject them instead; `rollout lint` reports them).

A denial is what the API server returns for a webhook denial: HTTP 400, reason BadRequest, message
`admission webhook "validation.webhook.serving.knative.dev" denied the request: validation failed: ...`
(knative.dev/pkg's webhook answers with a BadRequest status and the API server keeps its code).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from rollout.knative.traffic import (
    ENTRY_FIELDS,
    FieldFinding,
    default_traffic,
    dns1035_label_errors,
    validate_traffic,
    webhook_denial_message,
)
from rollout_lab.sandbox.apiserver.objects import clone
from rollout_lab.sandbox.knative.names import GROUP
from rollout_lab.sandbox.knative.service import meta
from rollout_lab.sandbox.store_api import ApiError, Obj, Operation, ResourceType

WEBHOOK_DENIAL_CODE = 400
WEBHOOK_DENIAL_REASON = "BadRequest"
_TEMPLATE_SPEC_DEFAULTS: dict[str, Any] = {
    "containerConcurrency": 0,
    "timeoutSeconds": 300,
    "enableServiceLinks": False,
}


def denial(findings: list[FieldFinding]) -> ApiError:
    return ApiError(
        WEBHOOK_DENIAL_CODE,
        WEBHOOK_DENIAL_REASON,
        webhook_denial_message(findings),
        details={"causes": [{"field": f.field, "message": f.message} for f in findings]},
    )


def _finding(field: str, message: str, hint: str, rule: str, details: str = "") -> FieldFinding:
    return FieldFinding(field=field, message=message, hint=hint, rule=rule, details=details)


class KnativeAdmission:
    """The `Admission` for serving.knative.dev kinds (other kinds pass through unchanged)."""

    def admit(self, rt: ResourceType, operation: Operation, obj: Obj, old: Obj | None) -> Obj:
        if rt.group != GROUP or operation == "DELETE":
            return obj
        if rt.kind == "Revision":
            self._check_revision(obj, old)  # checks only: no copy needed
            return obj
        obj = clone(obj)
        if rt.kind not in ("Service", "Configuration", "Route"):
            return obj
        spec = obj.setdefault("spec", {})
        findings: list[FieldFinding] = []
        if rt.kind in ("Service", "Route"):
            findings += self._traffic(spec, in_service=rt.kind == "Service")
        if rt.kind in ("Service", "Configuration"):
            template = spec.setdefault("template", {})
            _default_template(template)
            findings += _template_findings(template, meta(obj))
            if operation == "UPDATE" and old is not None:
                findings += _name_change_findings(template, (old.get("spec") or {}).get("template") or {})
        if findings:
            raise denial(findings)
        return obj

    @staticmethod
    def _traffic(spec: dict[str, Any], *, in_service: bool) -> list[FieldFinding]:
        raw = spec.get("traffic")
        if isinstance(raw, list):
            raw = [
                {k: v for k, v in entry.items() if k in ENTRY_FIELDS} if isinstance(entry, Mapping) else entry
                for entry in raw
            ]
        findings = validate_traffic(raw, in_service=in_service)
        if findings:
            return findings
        defaulted = default_traffic(raw, in_service=in_service)
        if defaulted or "traffic" in spec:
            spec["traffic"] = defaulted
        return []

    @staticmethod
    def _check_revision(obj: Obj, old: Obj | None) -> None:
        if old is None or obj.get("spec") == old.get("spec"):
            return
        before = json.dumps(old.get("spec"), indent=2, sort_keys=True).splitlines()
        after = json.dumps(obj.get("spec"), indent=2, sort_keys=True).splitlines()
        diff = "\n".join(difflib.unified_diff(before, after, lineterm="", n=1))
        raise denial(
            [
                _finding(
                    "spec",
                    "Immutable fields changed (-old +new)",
                    "a Revision's spec never changes: change the Service's template to get a new Revision",
                    "revision-immutable",
                    details=diff,
                )
            ]
        )


def _default_template(template: dict[str, Any]) -> None:
    spec = template.setdefault("spec", {})
    for key, value in _TEMPLATE_SPEC_DEFAULTS.items():
        spec.setdefault(key, value)
    containers = spec.get("containers")
    if isinstance(containers, list) and len(containers) == 1 and isinstance(containers[0], dict):
        container = containers[0]
        container.setdefault("name", "user-container")
        container.setdefault("resources", {})
        container.setdefault("readinessProbe", {"successThreshold": 1, "tcpSocket": {"port": 0}})


def _template_findings(template: Mapping[str, Any], parent: Mapping[str, Any]) -> list[FieldFinding]:
    findings: list[FieldFinding] = []
    containers = (template.get("spec") or {}).get("containers")
    if not containers:
        findings.append(
            _finding(
                "spec.template.spec.containers",
                "missing field(s)",
                "a revision template needs a container with an image",
                "template-container",
            )
        )
    else:
        for index, container in enumerate(containers):
            if not isinstance(container, Mapping) or not container.get("image"):
                findings.append(
                    _finding(
                        f"spec.template.spec.containers[{index}].image",
                        "missing field(s)",
                        "set the container image",
                        "template-image",
                    )
                )
    name = str(meta(template).get("name") or "")
    if not name:
        return findings
    label_errors = dns1035_label_errors(name)
    prefix = f"{parent.get('name', '')}-"
    if label_errors:
        message = "invalid value: not a DNS 1035 label: [" + " ".join(label_errors) + "]"
        findings.append(
            _finding(
                "spec.template.metadata.name",
                message,
                "use lower-case letters, digits and '-'",
                "revision-name",
            )
        )
    elif not name.startswith(prefix):
        findings.append(
            _finding(
                "spec.template.metadata.name",
                f'invalid value: "{name}" must have prefix "{prefix}"',
                f"name revisions '{prefix}<suffix>', e.g. '{prefix}v2'",
                "revision-name-prefix",
            )
        )
    return findings


def _name_change_findings(template: Mapping[str, Any], old_template: Mapping[str, Any]) -> list[FieldFinding]:
    name = meta(template).get("name")
    if not name or name != meta(old_template).get("name") or template == old_template:
        return []
    before = json.dumps(old_template, indent=2, sort_keys=True).splitlines()
    after = json.dumps(template, indent=2, sort_keys=True).splitlines()
    diff = "\n".join(difflib.unified_diff(before, after, lineterm="", n=1))
    return [
        _finding(
            "spec.template.metadata.name",
            "Saw the following changes without a name change (-old +new)",
            "a template change with a user-chosen revision name needs a new name (e.g. bump the suffix)",
            "revision-name-change",
            details=diff,
        )
    ]
