"""The Argo CD recipe: the Applications' ignore rules name the field the controller owns and the manager it
writes with, syncs respect them, the chart values they carry pass the chart's schema, and the Lua health
check (run in Lua 5.1, the dialect of Argo CD's gopher-lua) maps every Rollout phase to an Argo CD health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from lupa import lua51

from rollout.api.rollout import Phase, Rollout, RolloutSpec, RolloutStatus
from tests.chart.gitops import load, one, yaml_text
from tests.chart.rendering import Obj, chart, crds
from tests.chart.validation import validate

FIELD_MANAGER = "knative-rollout"


def _controller_field_manager() -> str:
    try:
        from rollout.kube import client  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return FIELD_MANAGER
    return str(client.FIELD_MANAGER)


def test_the_field_manager_is_the_one_the_controller_writes_with() -> None:
    assert _controller_field_manager() == FIELD_MANAGER


def _ignore_rules(app: Obj) -> dict[str, Obj]:
    return {f"{r['group']}/{r['kind']}": r for r in app["spec"]["ignoreDifferences"]}


def test_team_application_leaves_traffic_to_the_controller() -> None:
    app = one(load("argocd/checkout.yaml"), "Application")
    rules = _ignore_rules(app)
    for kind in ("serving.knative.dev/Service", "serving.knative.dev/Route"):
        assert rules[kind]["jqPathExpressions"] == [".spec.traffic"]
        assert rules[kind]["managedFieldsManagers"] == [FIELD_MANAGER]
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]


def test_system_wide_ignore_rules_say_the_same() -> None:
    cm = one(load("argocd/argocd-cm-patch.yaml"), "ConfigMap", "argocd-cm")
    validate(cm)
    for kind in ("Service", "Route"):
        rule = yaml_text(cm["data"][f"resource.customizations.ignoreDifferences.serving.knative.dev_{kind}"])
        assert rule == {"jqPathExpressions": [".spec.traffic"], "managedFieldsManagers": [FIELD_MANAGER]}


def test_controller_application_values_pass_the_chart_schema() -> None:
    app = one(load("argocd/knative-rollout.yaml"), "Application")
    source = app["spec"]["source"]
    assert source["path"] == "charts/knative-rollout"
    chart().validate_schema(source["helm"]["valuesObject"])
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]


# ------------------------------------------------------------------------------------------ Lua health


def _health_script() -> str:
    cm = one(load("argocd/argocd-cm-patch.yaml"), "ConfigMap", "argocd-cm")
    script: str = cm["data"]["resource.customizations.health.knrollout.dev_Rollout"]
    return script


def run_health(obj: Obj) -> tuple[str, str]:
    """Argo CD's way: the script is a chunk run with the resource as the global `obj`, returning a table
    with `status` and `message`. Libraries Argo CD does not open (io, os, debug, package) are removed."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    env = lua.globals()
    for name in ("io", "os", "debug", "package", "require", "dofile", "loadfile"):
        env[name] = None
    env.obj = lua.table_from(obj, recursive=True)
    result: Any = lua.execute(_health_script())
    return str(result["status"]), str(result["message"])


NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def sample(phase: Phase | None, **status: Any) -> Obj:
    spec = RolloutSpec.model_validate(
        {
            "target": {"name": "checkout"},
            "stableRevision": "checkout-00007",
            "candidateRevision": "checkout-00008",
            "policy": {
                "name": "checkout-canary",
                "hash": "0" * 64,
                "spec": {"strategy": {"canary": {"stepWeight": 25, "maxWeight": 50}}},
            },
        }
    )
    meta = {"name": "checkout-00008.1", "namespace": "shop", "generation": 1}
    if phase is None:
        obj = Rollout(metadata=meta, spec=spec).to_wire()
        del obj["status"]
        return obj
    st = RolloutStatus(phase=phase, observed_generation=1, started_at=NOW, **status)
    return Rollout(metadata=meta, spec=spec, status=st).to_wire()


EXPECTED: dict[Phase, str] = {
    Phase.PENDING: "Progressing",
    Phase.PROGRESSING: "Progressing",
    Phase.PROMOTING: "Progressing",
    Phase.PAUSED: "Suspended",
    Phase.SUCCEEDED: "Healthy",
    Phase.SUPERSEDED: "Healthy",
    Phase.ROLLED_BACK: "Degraded",
    Phase.FAILED: "Degraded",
    Phase.ABORTED: "Degraded",
    Phase.UNDONE: "Degraded",  # git still names the undone revision: a person should look
}


def test_every_phase_the_api_has_is_mapped() -> None:
    assert set(EXPECTED) == set(Phase)


@pytest.mark.parametrize("phase", list(Phase), ids=[p.value for p in Phase])
def test_health_of_each_phase(phase: Phase) -> None:
    obj = sample(phase, current_step=1, step_count=2, canary_weight=50, message="error-rate 4.1% vs 0.9%")
    validate(obj, crds())  # the samples are valid Rollouts, as the API server would store them
    status, message = run_health(obj)
    assert status == EXPECTED[phase]
    if status in {"Progressing", "Suspended", "Degraded"}:
        assert message.startswith(f"{phase.value} checkout-00008: step 2/2, canary at 50%")
        assert "error-rate 4.1% vs 0.9%" in message


def test_health_before_the_controller_wrote_status() -> None:
    obj = sample(None)
    validate(obj, crds())
    assert run_health(obj) == ("Progressing", "Waiting for the controller to pick up this rollout")


def test_health_waits_for_the_controller_to_observe_a_new_generation() -> None:
    obj = sample(Phase.SUCCEEDED)
    obj["metadata"]["generation"] = 2  # a person asked for something (spec.request) not yet acted on
    assert run_health(obj) == ("Progressing", "Waiting for the controller to observe generation 2")


def test_health_of_a_rollout_without_steps_and_a_phase_from_the_future() -> None:
    status, message = run_health(sample(Phase.PENDING))
    assert (status, message) == ("Progressing", "Pending checkout-00008, canary at 0%")
    obj = sample(Phase.PENDING)
    obj["status"]["phase"] = "Exploding"
    assert run_health(obj) == ("Unknown", "Unknown phase Exploding")
