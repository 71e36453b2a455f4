"""The Revision write (rollout.kube.revisions) carries the pre-warm hold and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.knative.minscale import HELD_FROM, MIN_SCALE
from rollout.kube.revisions import write_min_scale


class Client:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def merge_patch(
        self, resource: Any, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        self.sent.append((namespace, name, patch))
        return {}


async def test_the_hold_is_sent() -> None:
    client = Client()
    patch = {"metadata": {"annotations": {MIN_SCALE: "4", HELD_FROM: ""}}}
    await write_min_scale(client, "team-a", "hello-00002", patch)  # type: ignore[arg-type]
    assert client.sent == [("team-a", "hello-00002", patch)]


@pytest.mark.parametrize(
    "patch",
    [
        {"metadata": {"annotations": {MIN_SCALE: "4", "autoscaling.knative.dev/max-scale": "1"}}},
        {"metadata": {"annotations": {MIN_SCALE: "4"}, "labels": {"a": "b"}}},
        {"metadata": {"annotations": {MIN_SCALE: "4"}}, "spec": {"containers": []}},
    ],
)
async def test_anything_else_is_refused_before_it_is_sent(patch: dict[str, Any]) -> None:
    client = Client()
    with pytest.raises(ValueError, match="only"):
        await write_min_scale(client, "team-a", "hello-00002", patch)  # type: ignore[arg-type]
    assert client.sent == []
