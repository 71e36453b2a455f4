"""Threshold judge: bounds, failure limits, no data, minimum sample, errors."""

from __future__ import annotations

import json
import math

from rollout.api.policy import NoDataPolicy
from rollout.engine.judges.threshold import (
    CONSECUTIVE_ERROR_LIMIT,
    Check,
    Ledger,
    Limits,
    ThresholdOutcome,
    ThresholdRule,
    judge,
)

RULE = ThresholdRule(metric="error-rate", max=0.01, limits=Limits(3, 5), min_requests=50)


def run(
    rule: ThresholdRule, values: list[tuple[float | None, int | None, str | None]]
) -> list[ThresholdOutcome]:
    ledger = Ledger()
    out = []
    for value, sample, error in values:
        o = judge(rule, ledger, value, sample, error)
        # Round-trip the ledger through JSON every time, as the Rollout status does.
        ledger = Ledger.from_dict(json.loads(json.dumps(o.ledger.to_dict())))
        assert ledger == o.ledger
        out.append(o)
    return out


def test_pass_and_fail_on_bounds() -> None:
    ok, bad = run(RULE, [(0.005, 100, None), (0.02, 100, None)])
    assert ok.check is Check.PASSED and not ok.hold and not ok.rollback
    assert bad.check is Check.FAILED and bad.hold and not bad.rollback
    assert "above max" in bad.message
    low = judge(ThresholdRule(metric="x", min=0.99), Ledger(), 0.95, None)
    assert low.check is Check.FAILED and "below min" in low.message


def test_consecutive_failure_limit() -> None:
    outs = run(RULE, [(0.5, 100, None)] * 3)
    assert [o.rollback for o in outs] == [False, False, True]
    assert outs[-1].reason == "ConsecutiveFailureLimit"


def test_total_failure_limit_counts_across_passes() -> None:
    seq: list[tuple[float | None, int | None, str | None]] = []
    for _ in range(5):
        seq += [(0.5, 100, None), (0.0, 100, None)]
    outs = run(RULE, seq)
    fails = [o for o in outs if o.check is Check.FAILED]
    assert fails[-1].rollback and fails[-1].reason == "FailureLimit"
    assert not any(o.rollback for o in outs[:8])
    assert outs[-2].ledger.total_failures == 5 and outs[-2].ledger.consecutive_failures == 1


def test_too_few_requests_is_no_data_and_follows_the_policy() -> None:
    (wait,) = run(RULE, [(0.5, 10, None)])
    assert wait.check is Check.NO_DATA and wait.hold and not wait.rollback
    assert "fewer than minRequests 50" in wait.message
    passing = ThresholdRule(metric="e", max=0.01, min_requests=50, no_data=NoDataPolicy.PASS)
    (p,) = run(passing, [(0.5, 10, None)])
    assert p.check is Check.PASSED and not p.hold
    failing = ThresholdRule(
        metric="e", max=0.01, min_requests=50, no_data=NoDataPolicy.FAIL, limits=Limits(1, 1)
    )
    (f,) = run(failing, [(None, None, None)])
    assert f.check is Check.FAILED and f.rollback


def test_nan_is_no_data_not_a_failed_check() -> None:
    (o,) = run(RULE, [(math.nan, None, None)])
    assert o.check is Check.NO_DATA and o.ledger.total_failures == 0


def test_errors_are_not_failed_checks_but_have_their_own_limit() -> None:
    outs = run(RULE, [(None, None, "timeout")] * CONSECUTIVE_ERROR_LIMIT)
    assert all(o.check is Check.ERROR for o in outs)
    assert all(o.ledger.total_failures == 0 for o in outs)
    assert not any(o.rollback for o in outs)
    assert [o.errored for o in outs] == [False] * (CONSECUTIVE_ERROR_LIMIT - 1) + [True]
    assert outs[-1].reason == "ConsecutiveErrors"
    # Anything that is not an error resets the count of consecutive errors, but not failed checks.
    mixed = run(RULE, [(None, None, "x"), (0.5, 100, None), (None, None, "x"), (0.5, 100, None)])
    assert mixed[-1].ledger.consecutive_errors == 0
    assert mixed[-1].ledger.consecutive_failures == 2  # errors neither pass nor reset failures


def test_the_account_writes_values_in_the_metrics_unit() -> None:
    from rollout.engine.judges.threshold import ThresholdRule, classify

    errors = ThresholdRule(metric="error-rate", max=0.05, unit="%")
    assert classify(errors, 0.409091, 100)[1] == "40.91% is above max 5.00%"
    latency = ThresholdRule(metric="latency", max=0.5, unit="ms")
    assert classify(latency, 0.139, 100)[1] == "139ms is within bounds"
    assert classify(ThresholdRule(metric="custom", min=3.0), 2.5, None)[1] == "2.5 is below min 3"
