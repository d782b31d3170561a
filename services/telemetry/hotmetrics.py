"""Prometheus counters, gauges and histograms for the per-frame and per-record paths.

prometheus_client's metrics take a lock and walk several method calls per update: ~3 µs a counter
increment and ~7.5 µs a histogram observation on the 2-core development machine under load. The
gateway made eight such updates per frame and ingest one observation per record, which at one
sample per frame was a tenth of their CPU (issue 21). These keep plain Python numbers, updated
on the event loop only (one thread: no lock needed), and hand them to the registry at scrape
time through a collector, under the same names, types and buckets as before.

A scrape runs on the metrics server's thread and may see one update half applied (a histogram's
count ahead of its sum by one observation); every number it reports is one the metric held.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector


class FastCounter:
    def __init__(self, name: str, documentation: str) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, value=self.value)


class FastGauge:
    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, value=self.value)


class FastHistogram:
    """Buckets as Prometheus counts them: an observation falls in every bucket whose upper
    bound (le) it does not exceed; +Inf is added."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = [float(b) for b in buckets]
        self._bounds = np.array(self.bounds)
        self.counts = [0] * (len(self.bounds) + 1)   # per bucket, not cumulative; last: above all
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def observe_many(self, values: npt.NDArray[np.float64]) -> None:
        """Every value of `values`, as that many `observe` calls would (one numpy pass)."""
        if len(values) == 0:
            return
        index = np.searchsorted(self._bounds, values, side="left")
        for i, n in enumerate(np.bincount(index, minlength=len(self.counts)).tolist()):
            self.counts[i] += n
        total = self.sum
        for value in values.tolist():   # in order, as observe() would: the same float sum
            total += value
        self.sum = total

    def family(self) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for bound, count in zip([*self.bounds, float("inf")], self.counts, strict=True):
            running += count
            cumulative.append((_le(bound), running))
        return HistogramMetricFamily(self.name, self.documentation, buckets=cumulative, sum_value=self.sum)


def _le(bound: float) -> str:
    """The `le` label as prometheus_client writes it (floatToGoString)."""
    if bound == float("inf"):
        return "+Inf"
    return repr(float(bound))


Metric = FastCounter | FastGauge | FastHistogram


class _Collector(Collector):
    def __init__(self, metrics: Sequence[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        for metric in self._metrics:
            yield metric.family()


def register(*metrics: Metric, registry: CollectorRegistry = REGISTRY) -> None:
    """Makes `metrics` part of `registry`'s scrapes (once, at import of the module that owns them)."""
    registry.register(_Collector(metrics))

