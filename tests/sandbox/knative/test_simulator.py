"""Drive Knative Services through template and traffic changes in the sandbox store, and check what the
simulator makes of them against Knative's behaviour and the real Knative CRDs."""

from __future__ import annotations

from typing import Any

import pytest

from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.knative.gc import GcSettings
from rollout_lab.sandbox.knative.plan import Settings
from rollout_lab.sandbox.store_api import ApiError
from tests.sandbox.knative import crd_schemas
from tests.sandbox.knative.harness import Sandbox, sandbox, service_manifest, template


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    raise AssertionError(f"no {type_} condition in {obj['kind']} {obj['metadata']['name']}")


def traffic_view(obj: dict[str, Any]) -> list[tuple[str | None, str, int | None]]:
    return [(t.get("tag"), t["revisionName"], t.get("percent")) for t in obj["status"].get("traffic", [])]


def assert_conforms(sb: Sandbox) -> None:
    """Every Knative object the sandbox holds conforms to the real CRDs (schema, no undeclared field)."""
    crd_schemas.require_crds()
    for rt in (kinds.KSERVICES, kinds.CONFIGURATIONS, kinds.ROUTES, kinds.REVISIONS):
        items, _ = sb.store.list(rt)
        for obj in items:
            problems = crd_schemas.check(obj)
            assert problems == [], f"{obj['kind']} {obj['metadata']['name']}: {problems}"


async def test_service_through_template_and_traffic_changes() -> None:
    async with sandbox() as sb:
        sb.store.create(kinds.KSERVICES, service_manifest())
        await sb.advance(0.5)
        service = sb.service()
        assert service["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]  # defaulted
        assert condition(sb.revision("hello-00001"), "Ready")["reason"] == "Deploying"
        assert condition(service, "Ready")["status"] == "Unknown"

        await sb.advance(3)
        service = sb.service()
        assert condition(service, "Ready")["status"] == "True"
        assert service["status"]["latestReadyRevisionName"] == "hello-00001"
        assert service["status"]["url"] == "http://hello.default.example.com"
        assert service["status"]["address"]["url"] == "http://hello.default.svc.cluster.local"
        assert traffic_view(service) == [(None, "hello-00001", 100)]
        rev1 = sb.revision("hello-00001")
        labels = rev1["metadata"]["labels"]
        assert labels["serving.knative.dev/service"] == "hello"
        assert labels["serving.knative.dev/configuration"] == "hello"
        assert labels["serving.knative.dev/configurationGeneration"] == "1"
        assert labels["serving.knative.dev/routingState"] == "active"
        assert rev1["metadata"]["annotations"]["serving.knative.dev/routes"] == "hello"
        assert rev1["status"]["actualReplicas"] == 1

        # v2, pinned: the new revision gets a 0% tag, the stable one keeps everything
        sb.update_service(
            template=template("ghcr.io/acme/hello:v2"),
            traffic=[
                {"revisionName": "hello-00001", "percent": 100, "tag": "stable"},
                {"latestRevision": True, "percent": 0, "tag": "latest"},
            ],
        )
        await sb.advance(3)
        service = sb.service()
        assert service["status"]["latestCreatedRevisionName"] == "hello-00002"
        assert service["status"]["observedGeneration"] == service["metadata"]["generation"] == 2
        assert traffic_view(service) == [("stable", "hello-00001", 100), ("latest", "hello-00002", 0)]
        assert [t["url"] for t in service["status"]["traffic"]] == [
            "http://stable-hello.default.example.com",
            "http://latest-hello.default.example.com",
        ]
        assert condition(service, "Ready")["status"] == "True"

        # canary step
        sb.update_service(
            traffic=[
                {"revisionName": "hello-00001", "percent": 90, "tag": "stable"},
                {"revisionName": "hello-00002", "percent": 10, "tag": "canary"},
            ]
        )
        await sb.advance(1)
        assert traffic_view(sb.service()) == [("stable", "hello-00001", 90), ("canary", "hello-00002", 10)]
        assert sb.revisions() == ["hello-00001", "hello-00002"]
        assert_conforms(sb)


async def test_a_traffic_change_is_never_shown_ready_with_the_old_split() -> None:
    """Knative's Service reconciler writes its status once per reconcile, judging the Route by the object
    its update returned: the first status for a new generation already says the Route is out of date."""
    async with sandbox() as sb:
        sb.store.create(kinds.KSERVICES, service_manifest())
        await sb.advance(3)
        seen: list[dict[str, Any]] = []
        sb.store.on_commit(kinds.KSERVICES, lambda rt, entry: seen.append(entry.obj))
        sb.update_service(
            traffic=[
                {"revisionName": "hello-00001", "percent": 100, "tag": "stable"},
                {"latestRevision": True, "percent": 0, "tag": "latest"},
            ]
        )
        await sb.advance(1)
        generation = seen[0]["metadata"]["generation"]
        statuses = [obj["status"] for obj in seen[1:]]
        assert [s["observedGeneration"] for s in statuses] == [generation, generation]
        first = condition(seen[1], "RoutesReady")
        assert (first["status"], first["reason"]) == ("Unknown", "OutOfDate")
        assert traffic_view(seen[1]) == [(None, "hello-00001", 100)]  # the old split, not claimed Ready
        assert condition(seen[2], "RoutesReady")["status"] == "True"
        assert traffic_view(seen[2]) == [("stable", "hello-00001", 100), ("latest", "hello-00001", 0)]


async def test_unready_revision_keeps_old_split_and_moves_observed_generation() -> None:
    async with sandbox() as sb:
        sb.store.create(kinds.KSERVICES, service_manifest())
        await sb.advance(3)
        slow = template("ghcr.io/acme/hello:v2", annotations={"sandbox.knrollout.dev/ready-delay": "30s"})
        sb.update_service(
            template=slow,
            traffic=[
                {"revisionName": "hello-00001", "percent": 80},
                {"revisionName": "hello-00002", "percent": 20, "tag": "canary"},
            ],
        )
        await sb.advance(5)
        route, service = sb.route(), sb.service()
        assert traffic_view(route) == [(None, "hello-00001", 100)]  # the old split is still served
        assigned = condition(route, "AllTrafficAssigned")
        assert (assigned["status"], assigned["reason"]) == ("Unknown", "RevisionMissing")
        assert assigned["message"] == 'Revision "hello-00002" is not yet ready.'
        assert route["status"]["observedGeneration"] == route["metadata"]["generation"]
        assert service["status"]["observedGeneration"] == service["metadata"]["generation"]
        assert condition(service, "Ready")["status"] == "Unknown"
        # referenced while unready: already routed, so min-scale would apply
        assert (
            sb.revision("hello-00002")["metadata"]["labels"]["serving.knative.dev/routingState"] == "active"
        )
        assert_conforms(sb)

        await sb.advance(30)
        assert traffic_view(sb.service()) == [(None, "hello-00001", 80), ("canary", "hello-00002", 20)]
        assert condition(sb.route(), "AllTrafficAssigned")["status"] == "True"
        assert condition(sb.service(), "Ready")["status"] == "True"


async def test_failed_revision_with_chosen_name() -> None:
    async with sandbox() as sb:
        sb.store.create(kinds.KSERVICES, service_manifest())
        await sb.advance(3)
        broken = template(
            "ghcr.io/acme/hello:v3",
            name="hello-v3",
            annotations={"sandbox.knrollout.dev/fail": "ImagePullBackOff"},
        )
        sb.update_service(
            template=broken,
            traffic=[
                {"revisionName": "hello-00001", "percent": 90},
                {"revisionName": "hello-v3", "percent": 10},
            ],
        )
        await sb.advance(5)
        revision = sb.revision("hello-v3")
        ready = condition(revision, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "ImagePullBackOff")
        assert ready["message"] == 'Back-off pulling image "ghcr.io/acme/hello:v3"'
        assert condition(revision, "ResourcesAvailable")["status"] == "False"
        service = sb.service()
        configs_ready = condition(service, "ConfigurationsReady")
        assert (configs_ready["status"], configs_ready["reason"]) == ("False", "RevisionFailed")
        assert service["status"]["latestCreatedRevisionName"] == "hello-v3"
        assert service["status"]["latestReadyRevisionName"] == "hello-00001"
        assigned = condition(sb.route(), "AllTrafficAssigned")
        assert (assigned["status"], assigned["reason"]) == ("False", "RevisionMissing")
        assert traffic_view(service) == [(None, "hello-00001", 100)]  # pinned traffic still served
        assert_conforms(sb)


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        (
            [{"revisionName": "hello-00001", "percent": 50}, {"latestRevision": True, "percent": 40}],
            "Traffic targets sum to 90, want 100: spec.traffic",
        ),
        (
            [{"latestRevision": True, "percent": 100, "tag": "Bad_Tag"}],
            "invalid value: not a DNS 1035 label",
        ),
        (
            [{"configurationName": "hello", "percent": 100}],
            "must not set the field(s): spec.traffic[0].configurationName",
        ),
        (
            [{"revisionName": "hello-00001", "latestRevision": True, "percent": 100}],
            'may not set revisionName "hello-00001" when latestRevision is true',
        ),
    ],
)
async def test_invalid_traffic_is_rejected_like_knatives_webhook(
    traffic: list[dict[str, Any]], message: str
) -> None:
    async with sandbox() as sb:
        sb.store.create(kinds.KSERVICES, service_manifest())
        await sb.advance(3)
        before = sb.service()
        with pytest.raises(ApiError) as caught:
            sb.update_service(traffic=traffic)
        err = caught.value
        assert (err.code, err.reason) == (400, "BadRequest")
        assert err.message.startswith(
            'admission webhook "validation.webhook.serving.knative.dev" denied the request: validation failed: '
        )
        assert message in err.message
        assert sb.service()["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_unknown_traffic_fields_are_dropped_like_a_pruning_api_server() -> None:
    async with sandbox() as sb:
        manifest = service_manifest()
        manifest["spec"]["traffic"] = [{"latestRevision": True, "percent": 100, "path": "/v2"}]
        sb.store.create(kinds.KSERVICES, manifest)
        assert sb.service()["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]


async def test_revision_name_rules() -> None:
    async with sandbox() as sb:
        with pytest.raises(ApiError) as caught:
            sb.store.create(kinds.KSERVICES, service_manifest(image="x:1", revision_name="other-v1"))
        assert (
            'invalid value: "other-v1" must have prefix "hello-": spec.template.metadata.name'
            in caught.value.message
        )
        sb.store.create(kinds.KSERVICES, service_manifest(image="x:1", revision_name="hello-v1"))
        await sb.advance(3)
        assert sb.revisions() == ["hello-v1"]
        with pytest.raises(ApiError) as caught:
            sb.update_service(template=template("x:2", name="hello-v1"))
        assert "Saw the following changes without a name change (-old +new): spec.template.metadata.name" in (
            caught.value.message
        )
        sb.update_service(template=template("x:2", name="hello-v2"))
        await sb.advance(3)
        assert sb.revisions() == ["hello-v1", "hello-v2"]
        assert traffic_view(sb.service()) == [(None, "hello-v2", 100)]


async def test_route_traffic_rules_and_revision_immutability() -> None:
    async with sandbox() as sb:
        sb.store.create(kinds.KSERVICES, service_manifest())
        await sb.advance(3)
        with pytest.raises(ApiError) as caught:
            sb.store.create(
                kinds.ROUTES,
                {
                    "apiVersion": "serving.knative.dev/v1",
                    "kind": "Route",
                    "metadata": {"name": "side", "namespace": "default"},
                    "spec": {"traffic": [{"percent": 100}]},
                },
            )
        assert "expected exactly one, got neither" in caught.value.message
        revision = sb.revision("hello-00001")
        revision["spec"]["timeoutSeconds"] = 10
        with pytest.raises(ApiError) as caught:
            sb.store.update(kinds.REVISIONS, revision)
        assert "Immutable fields changed (-old +new): spec" in caught.value.message


async def test_standalone_route_and_foreign_revision() -> None:
    async with sandbox() as sb:
        sb.store.create(kinds.KSERVICES, service_manifest())
        sb.store.create(kinds.KSERVICES, service_manifest(name="other"))
        await sb.advance(3)
        sb.store.create(
            kinds.ROUTES,
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Route",
                "metadata": {"name": "mix", "namespace": "default"},
                "spec": {
                    "traffic": [
                        {"configurationName": "hello", "percent": 50},
                        {"revisionName": "other-00001", "percent": 50, "tag": "o"},
                    ]
                },
            },
        )
        await sb.advance(1)
        mix = sb.get(kinds.ROUTES, "mix")
        assert traffic_view(mix) == [(None, "hello-00001", 50), ("o", "other-00001", 50)]
        assert mix["status"]["traffic"][1]["url"] == "http://o-mix.default.example.com"
        # a Service's own traffic may not name another Service's revision (Knative >= 1.21)
        sb.update_service(traffic=[{"revisionName": "other-00001", "percent": 100}])
        await sb.advance(1)
        assigned = condition(sb.route(), "AllTrafficAssigned")
        assert (assigned["status"], assigned["reason"]) == ("False", "RevisionNotOwned")
        assert_conforms(sb)


async def test_revision_garbage_collection_keeps_routed_and_recent() -> None:
    settings = Settings(gc=GcSettings(min_non_active=1, max_non_active=2, retain_since_last_active=60))
    async with sandbox(settings=settings) as sb:
        sb.store.create(kinds.KSERVICES, service_manifest(image="x:1"))
        await sb.advance(3)
        for version in range(2, 6):
            sb.update_service(
                template=template(f"x:{version}"),
                traffic=[{"revisionName": "hello-00001", "percent": 100}],  # v1 stays routed
            )
            await sb.advance(3)
        # non-active: 00002..00004 (00005 is latest); keep 1 recent + those unrouted < 60s, cap 2
        assert "hello-00001" in sb.revisions()
        assert "hello-00005" in sb.revisions()
        assert len(sb.revisions()) <= 4
        await sb.advance(120)
        assert sb.revisions() == ["hello-00001", "hello-00004", "hello-00005"]


async def test_deleting_the_service_removes_its_children() -> None:
    async with sandbox() as sb:
        sb.store.create(kinds.KSERVICES, service_manifest())
        await sb.advance(3)
        sb.store.delete(kinds.KSERVICES, "default", "hello")
        await sb.advance(1)
        assert sb.revisions() == []
        assert sb.store.get(kinds.ROUTES, "default", "hello") is None
        assert sb.store.get(kinds.CONFIGURATIONS, "default", "hello") is None
