"""Pre-warming on a real cluster (strategy.prewarm, rollout.engine.prewarm): the candidate's Revision gets a
min-scale for the pods each share needs, Knative's autoscaler starts them, the share is given once they are
ready, and the Revision's own min-scale is back when the rollout ends. The sandbox integration test
(tests/integration/test_cold_start.py) checks the same against the sandbox's Knative; this one checks that a
real Knative honours the annotation on a Revision (it passes a Revision's autoscaling annotations to its
PodAutoscaler). Skipped without a cluster, like the rest of tests/e2e."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rollout.engine.prewarm import pods_for
from rollout.knative.minscale import HELD_FROM, MIN_SCALE
from tests.e2e.apps import App, eventually, polling
from tests.e2e.traffic import steady_load
from tests.e2e.workload import STEPS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

STABLE_PODS = 4


@contextlib.asynccontextmanager
async def pods_at_each_split(app: App, candidate: str) -> AsyncIterator[list[tuple[int, int]]]:
    """(candidate's served share, most ready candidate pods seen so far) at every change of the split."""
    seen: list[tuple[int, int]] = []
    most = 0

    async def record() -> None:
        nonlocal most
        revision = await app.revision_object(candidate)
        most = max(most, int((revision.get("status") or {}).get("actualReplicas") or 0))
        share = (await app.served_split()).get(candidate, 0)
        if not seen or seen[-1][0] != share:
            seen.append((share, most))

    async with polling(record):
        yield seen


async def test_the_candidate_has_the_pods_of_each_share_before_it_gets_it(app_factory: Any) -> None:
    app: App = await app_factory()
    await app.deploy(min_scale=STABLE_PODS)
    stable = await app.wait_pinned()

    async def stable_ready() -> bool:
        status = (await app.revision_object(stable)).get("status") or {}
        return int(status.get("actualReplicas") or 0) >= STABLE_PODS

    await eventually(stable_ready, 180, f"{STABLE_PODS} ready pods of {stable}")
    async with steady_load(app.settings.ingress, app.host):
        await app.release("2", min_scale=1)
        candidate = app.revision(2)
        async with pods_at_each_split(app, candidate) as seen:
            done = await app.wait_phase(f"{candidate}.1", {"Succeeded", "RolledBack", "Failed"}, 420)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"].get("stablePodsBefore") == STABLE_PODS, done["status"]
    shares = [share for share, _ in seen if share > 0]
    assert shares == [*STEPS, 100], seen
    short = [(s, pods) for s, pods in seen if s > 0 and pods < pods_for(s, STABLE_PODS, None)]
    assert short == [], f"shares given before their pods were ready: {short} (all: {seen})"
    annotations = (await app.revision_object(candidate))["metadata"].get("annotations") or {}
    assert annotations.get(MIN_SCALE) == "1" and HELD_FROM not in annotations, annotations
