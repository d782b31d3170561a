"""The hot-path metrics (issue 21) expose what prometheus_client's own metrics would."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from services.telemetry.hotmetrics import FastCounter, FastGauge, FastHistogram, register

BUCKETS = (0.001, 0.025, 0.5, 1, 2.5, 10)


@given(st.lists(st.floats(-5, 50, allow_nan=False), max_size=60), st.integers(0, 5))
@settings(max_examples=100, deadline=None)
def test_the_same_exposition_as_prometheus_client(values, increments):
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    c, h, g = (Counter("x_frames_total", "frames", registry=theirs), Histogram("x_age", "age", buckets=BUCKETS,
               registry=theirs), Gauge("x_in_flight", "in flight", registry=theirs))
    fc, fh, fg = FastCounter("x_frames_total", "frames"), FastHistogram("x_age", "age", BUCKETS), FastGauge(
        "x_in_flight", "in flight")
    register(fc, fh, fg, registry=ours)
    for v in values[: len(values) // 2]:
        h.observe(v)
        fh.observe(v)
    rest = values[len(values) // 2:]
    for v in rest:
        h.observe(v)
    fh.observe_many(np.array(rest, dtype=np.float64))
    for _ in range(increments):
        c.inc(2)
        fc.inc(2)
        g.inc()
        fg.inc()
    g.dec()
    fg.dec()

    def lines(registry):
        return sorted(line for line in generate_latest(registry).decode().splitlines()
                      if line and not line.startswith("#") and "_created" not in line)

    assert lines(ours) == lines(theirs)
