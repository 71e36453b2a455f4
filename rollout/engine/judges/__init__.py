"""Judges: pure functions from (rule, state, one interval's measurements) to (new state, verdict).

- `threshold`: absolute bounds with failure limits, no-data behaviour, a minimum sample, dry-run.
- `comparison`: the anytime-valid sequential comparison of canary and stable (error rate, latency tails).
- `metric`: one policy metric through both, as a `MetricResult` for the Rollout status; `advise` adds up
  the metrics into what the step should do.
Their state is plain JSON (kept in `RolloutStatus.judgeState`), so a restarted controller continues exactly.
"""
