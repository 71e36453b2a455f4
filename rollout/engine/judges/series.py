"""The evidence kept for one stream of (requests, bad requests) per arm: the error stream of an error-rate
metric, or the "slower than L" stream of one latency threshold L.

A stream keeps, for every psi on a fixed grid, the running sum S(psi) of the conditional log-likelihood ratio
against psi = 1 (see `sequential`). Because log LR(psi; psi0) = S(psi) - S(psi0), this one vector answers
every question the judge asks:

- regression (roll back): H0 psi <= psi0, mixture over psi0 x {1.25, 1.5, 2, 3, 5, 10}, whole rollout;
- no worse (a step may end early): H0 psi >= psi_max, mixture over alternatives {0.5, 0.8, 1}, current step;
- confidence bounds on the canary/stable ratio: psi0 is excluded above the estimate when "psi >= psi0" is
  rejected (alternatives: every grid point below psi0), below it when "psi <= psi0" is rejected.

Latency streams also keep the two-binomial e-process for the regression side (more powerful when slow
requests are common), and every stream can pass an absolute gate: the canary's bad share in this step is
shown below a fixed level, which is how a step can end early when bad requests are too rare for the
relative test. The state is plain JSON so that it survives in the Rollout status across restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from rollout.engine.judges.sequential import (
    log_mean_exp,
    odds_alternative,
    split,
    two_binomial_log_e,
)

REGRESSION_MULTIPLIERS = (1.25, 1.5, 2.0, 3.0, 5.0, 10.0)  # statistics.md's grid, times psi0
LATENCY_MULTIPLIERS = (1.2, 1.5, 2.0)  # two-binomial alternatives (odds ratios of slow-request shares)
NO_WORSE_ALTERNATIVES = (0.5, 0.8, 1.0)
BOUND_GRID = (0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
GATE_FRACTIONS = (0.25, 0.5)  # alternatives of the absolute gate, as fractions of its level
MIN_STABLE_FOR_ESTIMATE = 20  # stable requests before its own share replaces the baseline share


class Form(StrEnum):
    CONDITIONAL = "conditional"  # regression side: conditional binomial (statistics.md)
    TWO_BINOMIAL = "twoBinomial"  # regression side: two-binomial e-value (latency thresholds)


def _key(psi: float) -> float:
    return round(psi, 6)


_BOUND_KEYS = frozenset(_key(p) for p in BOUND_GRID)


def build_grid(psi0: float, psi_max: float | None) -> list[float]:
    points = {_key(p) for p in BOUND_GRID}
    points.add(_key(psi0))
    points.update(_key(psi0 * m) for m in REGRESSION_MULTIPLIERS)
    points.update(_key(a) for a in NO_WORSE_ALTERNATIVES)
    if psi_max is not None:
        points.add(_key(psi_max))
    return sorted(points)


@dataclass(frozen=True)
class StreamReport:
    """What one stream says after an interval (numbers for status and logs)."""

    name: str
    log_m: float  # regression e-process of this stream
    no_worse: bool
    no_worse_log_e: float | None
    gate_log_e: float | None
    ratio_estimate: float | None
    ratio_lower: float | None
    ratio_upper: float | None
    canary_requests: int
    canary_bad: int
    stable_requests: int
    stable_bad: int


@dataclass
class Stream:
    """Mutable working copy of one stream's state; `to_dict`/`from_dict` give its JSON form."""

    name: str
    form: Form
    grid: list[float]
    total: list[float]
    step: list[float]
    edge: float | None = None  # latency threshold in seconds (None for errors)
    baseline_share: float | None = None  # stable's bad share before the rollout (if known)
    gate_level: float | None = None
    gro: list[float] = field(default_factory=list)  # two-binomial log e per alternative
    canary: list[int] = field(default_factory=lambda: [0, 0])  # [requests, bad], whole rollout
    stable: list[int] = field(default_factory=lambda: [0, 0])
    step_canary: list[int] = field(default_factory=lambda: [0, 0])
    step_stable: list[int] = field(default_factory=lambda: [0, 0])
    ratio_lower: float | None = None  # running intersection of the confidence sets
    ratio_upper: float | None = None
    _positions: dict[float, int] | None = field(default=None, repr=False, compare=False)
    _logs: list[float] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def new(
        cls,
        name: str,
        form: Form,
        psi0: float,
        psi_max: float | None,
        *,
        edge: float | None = None,
        baseline_share: float | None = None,
        gate_level: float | None = None,
    ) -> Stream:
        grid = build_grid(psi0, psi_max)
        return cls(
            name=name,
            form=form,
            grid=grid,
            total=[0.0] * len(grid),
            step=[0.0] * len(grid),
            edge=edge,
            baseline_share=baseline_share,
            gate_level=gate_level,
            gro=[0.0] * len(LATENCY_MULTIPLIERS) if form is Form.TWO_BINOMIAL else [],
        )

    # ------------------------------------------------------------------------------------------ updates

    def start_step(self) -> None:
        self.step = [0.0] * len(self.grid)
        self.step_canary = [0, 0]
        self.step_stable = [0, 0]

    def add(self, n_canary: int, f_canary: int, n_stable: int, f_stable: int, psi0: float) -> None:
        """Fold in one interval's counts (bad <= requests is the caller's job)."""
        if self.form is Form.TWO_BINOMIAL:
            self._add_two_binomial(n_canary, f_canary, n_stable, f_stable, psi0)
        w = split(n_canary, n_stable)
        bad = f_canary + f_stable
        if w is not None and bad > 0 and 0.0 < w < 1.0:
            # conditional_log_lr(f_canary, f_stable, w, psi) for every grid point, with log(psi) cached.
            total, step = self.total, self.step
            for i, (psi, log_psi) in enumerate(zip(self.grid, self._log_grid(), strict=True)):
                inc = f_canary * log_psi - bad * math.log(psi * w + 1.0 - w)
                total[i] += inc
                step[i] += inc
        for acc, n, f in (
            (self.canary, n_canary, f_canary),
            (self.stable, n_stable, f_stable),
            (self.step_canary, n_canary, f_canary),
            (self.step_stable, n_stable, f_stable),
        ):
            acc[0] += n
            acc[1] += f

    def _stable_estimate(self) -> float | None:
        """Stable's bad share from data seen before this interval (predictable, as the e-value needs)."""
        n, f = self.stable
        if n >= MIN_STABLE_FOR_ESTIMATE:
            return (f + 0.5) / (n + 1.0)
        return self.baseline_share

    def _add_two_binomial(self, n_c: int, f_c: int, n_s: int, f_s: int, psi0: float) -> None:
        q = self._stable_estimate()
        if q is None or n_c <= 0 or n_s <= 0:
            return
        q = min(max(q, 1e-6), 1.0 - 1e-6)
        for i, m in enumerate(LATENCY_MULTIPLIERS):
            alt_c = odds_alternative(q, psi0 * m)
            # The alternative must lie above the null (alt_c > psi0 q); otherwise it has no power.
            if alt_c <= psi0 * q:
                continue
            self.gro[i] += two_binomial_log_e(f_c, n_c, f_s, n_s, alt_canary=alt_c, alt_stable=q, psi0=psi0)

    # ------------------------------------------------------------------------------------------ readings

    def _index(self, psi: float) -> int:
        if self._positions is None:
            self._positions = {p: i for i, p in enumerate(self.grid)}
        return self._positions[_key(psi)]

    def _log_grid(self) -> list[float]:
        if self._logs is None:
            self._logs = [math.log(p) for p in self.grid]
        return self._logs

    def copy(self) -> Stream:
        return replace(
            self,
            total=list(self.total),
            step=list(self.step),
            gro=list(self.gro),
            canary=list(self.canary),
            stable=list(self.stable),
            step_canary=list(self.step_canary),
            step_stable=list(self.step_stable),
        )

    def regression_log_m(self, psi0: float) -> float:
        if self.form is Form.TWO_BINOMIAL:
            return log_mean_exp(self.gro)
        base = self.total[self._index(psi0)]
        return log_mean_exp([self.total[self._index(psi0 * m)] - base for m in REGRESSION_MULTIPLIERS])

    def no_worse_log_e(self, psi_max: float) -> float:
        base = self.step[self._index(psi_max)]
        return log_mean_exp([self.step[self._index(a)] - base for a in NO_WORSE_ALTERNATIVES if a < psi_max])

    def gate_log_e(self) -> float | None:
        """Canary-only e-process for "the canary's bad share in this step is at least gate_level"."""
        level = self.gate_level
        if level is None or not 0.0 < level < 1.0:
            return None
        n, f = self.step_canary
        values = []
        for frac in GATE_FRACTIONS:
            alt = level * frac
            values.append(f * math.log(alt / level) + (n - f) * math.log((1.0 - alt) / (1.0 - level)))
        return log_mean_exp(values)

    def update_bounds(self, alpha: float) -> None:
        """Intersect the running confidence set for psi with this interval's one."""
        # "psi >= grid[j]" is tested by the mixture of the grid points below it, (1/j) sum_{i<j} e^(S_i - S_j),
        # and "psi <= grid[j]" by those above it; prefix and suffix sums give all of them in one pass.
        cut = math.log(1.0 / alpha)
        s = self.total
        top = max(s)
        scaled = [math.exp(x - top) for x in s]
        size = len(s)
        upper = self.ratio_upper
        lower = self.ratio_lower
        prefix = 0.0
        for j in range(size):
            if prefix > 0.0 and self.grid[j] in _BOUND_KEYS:
                log_m = math.log(prefix) - math.log(j) + top - s[j]
                if log_m >= cut and (upper is None or self.grid[j] < upper):
                    upper = self.grid[j]
            prefix += scaled[j]
        suffix = 0.0
        for j in range(size - 1, -1, -1):
            if suffix > 0.0 and self.grid[j] in _BOUND_KEYS:
                log_m = math.log(suffix) - math.log(size - 1 - j) + top - s[j]
                if log_m >= cut and (lower is None or self.grid[j] > lower):
                    lower = self.grid[j]
            suffix += scaled[j]
        self.ratio_upper = upper
        self.ratio_lower = lower

    def ratio_estimate(self) -> float | None:
        (n_c, f_c), (n_s, f_s) = self.canary, self.stable
        if n_c == 0 or n_s == 0 or f_s == 0:
            return None
        return (f_c / n_c) / (f_s / n_s)

    def report(self, psi0: float, psi_max: float | None, beta: float) -> StreamReport:
        cut = math.log(1.0 / beta)
        ni = self.no_worse_log_e(psi_max) if psi_max is not None else None
        gate = self.gate_log_e() if psi_max is not None else None
        no_worse = (ni is not None and ni >= cut) or (gate is not None and gate >= cut)
        return StreamReport(
            name=self.name,
            log_m=self.regression_log_m(psi0),
            no_worse=no_worse,
            no_worse_log_e=ni,
            gate_log_e=gate,
            ratio_estimate=self.ratio_estimate(),
            ratio_lower=self.ratio_lower,
            ratio_upper=self.ratio_upper,
            canary_requests=self.canary[0],
            canary_bad=self.canary[1],
            stable_requests=self.stable[0],
            stable_bad=self.stable[1],
        )

    # ------------------------------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "form": self.form.value,
            "grid": list(self.grid),
            "total": list(self.total),
            "step": list(self.step),
            "edge": self.edge,
            "baselineShare": self.baseline_share,
            "gateLevel": self.gate_level,
            "gro": list(self.gro),
            "canary": list(self.canary),
            "stable": list(self.stable),
            "stepCanary": list(self.step_canary),
            "stepStable": list(self.step_stable),
            "ratioLower": self.ratio_lower,
            "ratioUpper": self.ratio_upper,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stream:
        grid = [float(x) for x in data["grid"]]
        total = [float(x) for x in data["total"]]
        step = [float(x) for x in data["step"]]
        if not (len(grid) == len(total) == len(step)):
            raise ValueError(f"stream {data.get('name')!r}: grid and sums differ in length")
        return cls(
            name=str(data["name"]),
            form=Form(data["form"]),
            grid=grid,
            total=total,
            step=step,
            edge=_opt_float(data.get("edge")),
            baseline_share=_opt_float(data.get("baselineShare")),
            gate_level=_opt_float(data.get("gateLevel")),
            gro=[float(x) for x in data.get("gro", [])],
            canary=_pair(data["canary"]),
            stable=_pair(data["stable"]),
            step_canary=_pair(data["stepCanary"]),
            step_stable=_pair(data["stepStable"]),
            ratio_lower=_opt_float(data.get("ratioLower")),
            ratio_upper=_opt_float(data.get("ratioUpper")),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _pair(value: Any) -> list[int]:
    n, f = value
    return [int(n), int(f)]
