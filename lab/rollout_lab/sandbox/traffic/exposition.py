"""Counters and histograms with fixed label names, rendered in the Prometheus text format (0.0.4).

Written here rather than with prometheus_client because Knative's series must appear exactly as Knative
exposes them: counters without a `_total` suffix, series that vanish when their pod goes away (and start
again at zero for a new pod), arbitrary label sets per family.

Rendering is incremental: each series keeps its label text (formatted once, when the series appears) and
its last rendered lines, redone only when the series changed since the previous render; each family keeps
its sorted order until a series appears or goes. A scrape of thousands of series then costs little more
than joining strings, and the text is the same as rendering everything afresh.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

LabelValues = tuple[str, ...]
V = TypeVar("V")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _label_parts(names: Sequence[str], values: Sequence[str]) -> list[str]:
    return [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]


def _braces(parts: Sequence[str]) -> str:
    return "{" + ",".join(parts) + "}" if parts else ""


class _Family(Generic[V]):
    """What counters and histograms share: the series' rendered text, kept until the series changes."""

    name: str
    help: str
    label_names: tuple[str, ...]
    series: dict[LabelValues, V]

    def _init_cache(self) -> None:
        self._text: dict[LabelValues, str] = {}  # the series' lines as last rendered ("\n"-joined)
        self._dirty: set[LabelValues] = set()
        self._order: list[LabelValues] | None = None  # sorted series, None once a series appears or goes

    def _changed(self, values: LabelValues, new: bool) -> None:
        self._dirty.add(values)
        if new:
            self._order = None

    def remove(self, values: LabelValues) -> None:
        del self.series[values]
        self._text.pop(values, None)
        self._dirty.discard(values)
        self._order = None

    def _render_series(self, values: LabelValues) -> str:
        raise NotImplementedError

    def _type(self) -> str:
        raise NotImplementedError

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {self.help}")
        out.append(f"# TYPE {self.name} {self._type()}")
        for values in self._dirty:
            self._text[values] = self._render_series(values)
        self._dirty.clear()
        if self._order is None:
            self._order = sorted(self.series)
        text = self._text
        out.extend(text[values] for values in self._order)


@dataclass
class Counter(_Family[float]):
    name: str
    help: str
    label_names: tuple[str, ...]
    series: dict[LabelValues, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._init_cache()
        self._prefix: dict[LabelValues, str] = {}

    def inc(self, values: LabelValues, amount: float = 1.0) -> None:
        old = self.series.get(values)
        self.series[values] = (old or 0.0) + amount
        self._changed(values, old is None)

    def remove(self, values: LabelValues) -> None:
        super().remove(values)
        self._prefix.pop(values, None)

    def _type(self) -> str:
        return "counter"

    def _render_series(self, values: LabelValues) -> str:
        prefix = self._prefix.get(values)
        if prefix is None:
            prefix = self._prefix[values] = self.name + _braces(_label_parts(self.label_names, values)) + " "
        return prefix + _format_number(self.series[values])


@dataclass
class HistogramSeries:
    counts: list[int]
    total: float = 0.0
    count: int = 0
    prefixes: tuple[str, ...] = ()  # the series' line starts: each bucket, +Inf, _sum, _count


@dataclass
class Histogram(_Family[HistogramSeries]):
    name: str
    help: str
    label_names: tuple[str, ...]
    buckets: tuple[float, ...]
    series: dict[LabelValues, HistogramSeries] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._init_cache()
        self._le = [f'le="{_format_number(bound)}"' for bound in self.buckets] + ['le="+Inf"']

    def observe(self, values: LabelValues, value: float) -> None:
        entry = self.series.get(values)
        self._changed(values, entry is None)
        if entry is None:
            entry = self.series[values] = HistogramSeries(counts=[0] * len(self.buckets))
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            entry.counts[index] += 1
        entry.total += value
        entry.count += 1

    def _type(self) -> str:
        return "histogram"

    def _render_series(self, values: LabelValues) -> str:
        entry = self.series[values]
        if not entry.prefixes:
            parts = _label_parts(self.label_names, values)
            bucket = self.name + "_bucket"
            entry.prefixes = (
                *(bucket + _braces([*parts, le]) + " " for le in self._le),
                self.name + "_sum" + _braces(parts) + " ",
                self.name + "_count" + _braces(parts) + " ",
            )
        numbers = [str(c) for c in itertools.accumulate(entry.counts)]
        numbers += [str(entry.count), _format_number(entry.total), str(entry.count)]
        return "\n".join([p + n for p, n in zip(entry.prefixes, numbers, strict=True)])


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
                family.remove(values)
            dropped += len(doomed)
        return dropped

    def render(self) -> str:
        out: list[str] = []
        for family in self._families.values():
            if family.series:
                family.render(out)
        return "\n".join(out) + "\n" if out else ""
