"""The soak's short version (bench/soak.py at 90 s of waves, one Service per scenario): every rollout ends
in the verdict its scenario deserves, with no invariant violated, while the controller is killed, the API
server fails, Prometheus stops and the webhook fails or hangs."""

from __future__ import annotations

from pathlib import Path

from bench.soak import parse_args, soak
from tests.integration.harness import NEEDS_PROMETHEUS

pytestmark = NEEDS_PROMETHEUS


async def test_a_short_soak_keeps_every_invariant(tmp_path: Path) -> None:
    args = parse_args(
        ["--duration", "90", "--drain", "90", "--services", "1", "--controller-log", str(tmp_path / "c.log")]
    )
    result = await soak(args)
    assert result["violations"] == {}, result["violation_details"]
    assert result["rollouts"] >= 24, result  # at least three waves of the eight rollouts a wave starts
    faults = result["faults"]
    assert faults["controller SIGKILL"] >= 1 and faults["API error 500"] >= 1, faults
    assert faults.get("Prometheus stop at a step's end", 0) + faults.get("Prometheus stop at random", 0) >= 1
