"""Onboarding and starting rollouts, against the sandbox through kubernetes-asyncio."""

from tests.integration.harness import NS, controller, eventually, sandbox

CANARY = {
    "strategy": {"canary": {"steps": [{"weight": 20}, {"weight": 50}], "interval": "2s"}},
    "analysis": {"interval": "2s", "noData": "pass", "metrics": []},
}


async def test_opted_in_service_is_pinned_and_new_revision_starts_a_rollout() -> None:
    async with sandbox() as cluster:
        cluster.apply_policy("canary", CANARY)
        cluster.create_service("hello", rps=0)
        await eventually(lambda: cluster.latest_created("hello") == "hello-00001")
        async with controller(cluster):
            traffic = await eventually(
                lambda: (
                    [e for e in cluster.spec_traffic("hello") if e.get("tag") == "stable"]
                    and cluster.spec_traffic("hello")
                ),
                within=10,
            )
            assert {"revisionName": "hello-00001", "percent": 100, "tag": "stable"}.items() <= traffic[
                0
            ].items()
            cluster.new_revision("hello", "ghcr.io/acme/hello:v2")
            r = await eventually(lambda: cluster.rollout("hello-00002.1"), within=10)
            assert r.spec.stable_revision == "hello-00001"
            assert "TrafficPinned" in cluster.reasons("hello")
            assert "RolloutStarted" in cluster.reasons("hello")
            print(NS)
