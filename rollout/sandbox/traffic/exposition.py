"""Counters and histograms with fixed label names, rendered in the Prometheus text format (0.0.4).

Written here rather than with prometheus_client because Knative's series must appear exactly as Knative
exposes them: counters without a `_total` suffix, series that vanish when their pod goes away (and start
again at zero for a new pod), arbitrary label sets per family.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LabelValues = tuple[str, ...]
_INF_LE = 'le="+Inf"'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


@dataclass
class Counter:
    name: str
    help: str
    label_names: tuple[str, ...]
    series: dict[LabelValues, float] = field(default_factory=dict)

    def inc(self, values: LabelValues, amount: float = 1.0) -> None:
        self.series[values] = self.series.get(values, 0.0) + amount

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {self.help}")
        out.append(f"# TYPE {self.name} counter")
        for values in sorted(self.series):
            out.append(
                f"{self.name}{_labels(self.label_names, values)} {_format_number(self.series[values])}"
            )


@dataclass
class HistogramSeries:
    counts: list[int]
    total: float = 0.0
    count: int = 0


@dataclass
class Histogram:
    name: str
    help: str
    label_names: tuple[str, ...]
    buckets: tuple[float, ...]
    series: dict[LabelValues, HistogramSeries] = field(default_factory=dict)

    def observe(self, values: LabelValues, value: float) -> None:
        entry = self.series.get(values)
        if entry is None:
            entry = self.series[values] = HistogramSeries(counts=[0] * len(self.buckets))
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            entry.counts[index] += 1
        entry.total += value
        entry.count += 1

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {self.help}")
        out.append(f"# TYPE {self.name} histogram")
        for values in sorted(self.series):
            entry = self.series[values]
            cumulative = 0
            for bound, count in zip(self.buckets, entry.counts, strict=True):
                cumulative += count
                le = f'le="{_format_number(bound)}"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, values, le)} {cumulative}")
            out.append(f"{self.name}_bucket{_labels(self.label_names, values, _INF_LE)} {entry.count}")
            out.append(f"{self.name}_sum{_labels(self.label_names, values)} {_format_number(entry.total)}")
            out.append(f"{self.name}_count{_labels(self.label_names, values)} {entry.count}")


Family = Counter | Histogram


class Registry:
    """The families of one exporter, rendered in registration order."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}

    def counter(self, name: str, help_: str, label_names: Sequence[str]) -> Counter:
        family = Counter(name, help_, tuple(label_names))
        self._families[name] = family
        return family

    def histogram(
        self, name: str, help_: str, label_names: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        family = Histogram(name, help_, tuple(label_names), tuple(buckets))
        self._families[name] = family
        return family

    def drop(self, keep: Callable[[Family, LabelValues], bool]) -> int:
        """Remove the series for which `keep` is False (e.g. those of a pod that went away)."""
        dropped = 0
        for family in self._families.values():
            doomed = [values for values in family.series if not keep(family, values)]
            for values in doomed:
                del family.series[values]
            dropped += len(doomed)
        return dropped

    def render(self) -> str:
        out: list[str] = []
        for family in self._families.values():
            if family.series:
                family.render(out)
        return "\n".join(out) + "\n" if out else ""
