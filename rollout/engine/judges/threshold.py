"""Threshold judge: absolute bounds on one value of the canary, checked once per analysis interval.

Each check ends as one of:
- passed: the value is inside [min, max];
- failed: outside the bounds, or no data when the policy says no data fails;
- no data: no value, too few requests behind it (fewer than minRequests), or NaN (0/0 in PromQL); what that
  means is the policy's `noData`: `wait` (neither pass nor fail; the step does not advance), `pass` or `fail`;
- error: the source could not answer. An error is NOT a failed check: it counts towards a separate limit of
  consecutive errors (CONSECUTIVE_ERROR_LIMIT), and any other outcome resets that count.

The judge asks for a rollback once the failed checks reach the policy's limits: `failureLimit.consecutive`
failed checks in a row, or `failureLimit.total` in all. A failed check within the limits holds the step (it
does not advance at the end of its bake time), as a Flagger failed check halts the weight. Dry-run metrics
are judged the same way; the caller reports them and never acts on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from rollout.api.policy import NoDataPolicy
from rollout.engine.units import in_unit

CONSECUTIVE_ERROR_LIMIT = 4  # measurement errors in a row before the metric reports Error (Argo's default)


class Check(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NO_DATA = "noData"
    ERROR = "error"


@dataclass(frozen=True)
class Limits:
    consecutive_failures: int = 3
    total_failures: int = 5
    consecutive_errors: int = CONSECUTIVE_ERROR_LIMIT


@dataclass(frozen=True)
class Ledger:
    """Counts of checks, kept in the Rollout status (JSON)."""

    checks: int = 0
    passed: int = 0
    total_failures: int = 0
    consecutive_failures: int = 0
    consecutive_errors: int = 0
    no_data: int = 0
    last: Check | None = None

    def record(self, check: Check) -> Ledger:
        new = replace(self, checks=self.checks + 1, last=check)
        if check is Check.PASSED:
            return replace(new, passed=self.passed + 1, consecutive_failures=0, consecutive_errors=0)
        if check is Check.FAILED:
            return replace(
                new,
                total_failures=self.total_failures + 1,
                consecutive_failures=self.consecutive_failures + 1,
                consecutive_errors=0,
            )
        if check is Check.NO_DATA:
            return replace(new, no_data=self.no_data + 1, consecutive_errors=0)
        return replace(new, consecutive_errors=self.consecutive_errors + 1)

    def exceeded(self, limits: Limits) -> str | None:
        """Reason when the failed checks reached a limit."""
        if self.consecutive_failures >= limits.consecutive_failures:
            return "ConsecutiveFailureLimit"
        if self.total_failures >= limits.total_failures:
            return "FailureLimit"
        return None

    def errored(self, limits: Limits) -> bool:
        return self.consecutive_errors >= limits.consecutive_errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "passed": self.passed,
            "totalFailures": self.total_failures,
            "consecutiveFailures": self.consecutive_failures,
            "consecutiveErrors": self.consecutive_errors,
            "noData": self.no_data,
            "last": self.last.value if self.last is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ledger:
        last = data.get("last")
        return cls(
            checks=int(data.get("checks", 0)),
            passed=int(data.get("passed", 0)),
            total_failures=int(data.get("totalFailures", 0)),
            consecutive_failures=int(data.get("consecutiveFailures", 0)),
            consecutive_errors=int(data.get("consecutiveErrors", 0)),
            no_data=int(data.get("noData", 0)),
            last=Check(last) if last is not None else None,
        )


def no_data_check(policy: NoDataPolicy) -> Check:
    """What a check without data counts as."""
    if policy is NoDataPolicy.PASS:
        return Check.PASSED
    if policy is NoDataPolicy.FAIL:
        return Check.FAILED
    return Check.NO_DATA


@dataclass(frozen=True)
class ThresholdRule:
    metric: str
    min: float | None = None
    max: float | None = None
    limits: Limits = field(default_factory=Limits)
    no_data: NoDataPolicy = NoDataPolicy.WAIT
    min_requests: int = 0
    unit: str = ""  # how its account writes values (rollout.engine.units): "%", "ms" or plain


@dataclass(frozen=True)
class ThresholdOutcome:
    check: Check
    ledger: Ledger
    rollback: bool  # a failure limit is reached
    hold: bool  # the step must not advance (last check failed, no data with `wait`, error)
    errored: bool  # consecutive errors reached their limit
    reason: str
    message: str


def classify(rule: ThresholdRule, value: float | None, sample: int | None) -> tuple[Check, str]:
    """The check for one value (None: no data). `sample` is the number of requests behind the value, when
    the value is built from requests."""
    if value is None:
        return no_data_check(rule.no_data), "no data"
    if math.isnan(value):
        return no_data_check(rule.no_data), "value is NaN (no requests behind it)"
    if sample is not None and sample < rule.min_requests:
        return no_data_check(rule.no_data), f"{sample} requests, fewer than minRequests {rule.min_requests}"
    shown = in_unit(value, rule.unit)
    if rule.min is not None and value < rule.min:
        return Check.FAILED, f"{shown} is below min {in_unit(rule.min, rule.unit)}"
    if rule.max is not None and value > rule.max:
        return Check.FAILED, f"{shown} is above max {in_unit(rule.max, rule.unit)}"
    return Check.PASSED, f"{shown} is within bounds"


def judge(
    rule: ThresholdRule, ledger: Ledger, value: float | None, sample: int | None, error: str | None = None
) -> ThresholdOutcome:
    """One check. `error` set means the source failed (value and sample are then ignored)."""
    if error is not None:
        check, message = Check.ERROR, f"measurement error: {error}"
    else:
        check, message = classify(rule, value, sample)
    new = ledger.record(check)
    limit = new.exceeded(rule.limits)
    errored = new.errored(rule.limits)
    if limit is not None:
        reason = limit
        message = (
            f"{message}; {new.consecutive_failures} failed in a row, {new.total_failures} in all "
            f"(limits {rule.limits.consecutive_failures} in a row, {rule.limits.total_failures} in all)"
        )
    elif errored:
        reason = "ConsecutiveErrors"
        message = f"{message}; {new.consecutive_errors} errors in a row"
    else:
        reason = {
            Check.PASSED: "CheckPassed",
            Check.FAILED: "CheckFailed",
            Check.NO_DATA: "NoData",
            Check.ERROR: "MeasurementError",
        }[check]
    return ThresholdOutcome(
        check=check,
        ledger=new,
        rollback=limit is not None,
        hold=check is not Check.PASSED,
        errored=errored,
        reason=reason,
        message=message,
    )
