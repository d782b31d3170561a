"""What the agent counts: reads and errors per source and kind, samples made, batches sent and
acknowledged, refusals by reason, connections and the clock skew. Logged every `log_every_s`
(and the first error of each kind of each source at once), shown by `--dry-run`, and exported to
Prometheus when the configuration gives a metrics port (prometheus_client is then imported;
otherwise the agent does without it)."""

from __future__ import annotations

import logging
from collections import Counter as Tally
from typing import Any

log = logging.getLogger("edge")


class Counters:
    def __init__(self) -> None:
        self.reads: Tally[str] = Tally()
        self.errors: Tally[tuple[str, str]] = Tally()
        self.last_error: dict[str, str] = {}
        self.samples = 0
        self.batches_sent = 0
        self.samples_sent = 0
        self.samples_acked = 0
        self.samples_refused: Tally[str] = Tally()
        self.batches_refused: Tally[str] = Tally()
        self.samples_not_stored: Tally[str] = Tally()   # acknowledged, then named in a SampleNotice
        self.connections = 0
        self.disconnections = 0
        self.garbled_frames = 0
        self.control_errors = 0
        self.clock_skew_ms: int | None = None
        self._prometheus: _Prometheus | None = None

    def export(self, port: int) -> None:
        self._prometheus = _Prometheus(port)

    # ------------------------------------------------------------ sources

    def read(self, source: str) -> None:
        self.reads[source] += 1
        if self._prometheus:
            self._prometheus.reads.labels(source).inc()

    def error(self, source: str, kind: str, message: str) -> None:
        first = (source, kind) not in self.errors
        self.errors[(source, kind)] += 1
        self.last_error[source] = message
        (log.warning if first else log.debug)("%s: %s (%s)", source, message, kind)
        if self._prometheus:
            self._prometheus.errors.labels(source, kind).inc()

    # ------------------------------------------------------------ uplink

    def sample(self) -> None:
        self.samples += 1
        if self._prometheus:
            self._prometheus.samples.inc()

    def batch_sent(self, samples: int) -> None:
        self.batches_sent += 1
        self.samples_sent += samples

    def acked(self, accepted: int, refused: tuple[tuple[int, str, str], ...]) -> None:
        self.samples_acked += accepted
        for _, reason, detail in refused:
            if reason not in self.samples_refused:
                log.warning("the gateway refused a sample: %s (%s)", reason, detail)
            self.samples_refused[reason] += 1
        if self._prometheus:
            self._prometheus.acked.inc(accepted)

    def batch_refused(self, reason: str) -> None:
        self.batches_refused[reason] += 1

    def not_stored(self, reason: str, detail: str, timestamps_ms: tuple[int, ...]) -> None:
        """Acknowledged samples the cloud's store did not take (rare: each notice is logged)."""
        log.warning("the cloud did not store %d acknowledged samples: %s (%s), timestamps %s%s", len(timestamps_ms),
                    reason, detail, ", ".join(map(str, timestamps_ms[:5])), ", …" if len(timestamps_ms) > 5 else "")
        self.samples_not_stored[reason] += len(timestamps_ms)
        if self._prometheus:
            self._prometheus.not_stored.labels(reason).inc(len(timestamps_ms))

    def connected(self, skew_ms: int) -> None:
        self.connections += 1
        self.clock_skew_ms = skew_ms
        if self._prometheus:
            self._prometheus.skew.set(skew_ms / 1_000)
            self._prometheus.connected.set(1)

    def disconnected(self) -> None:
        self.disconnections += 1
        if self._prometheus:
            self._prometheus.connected.set(0)

    def garbled(self, detail: str) -> None:
        self.garbled_frames += 1
        log.warning("the gateway sent something unexpected: %s", detail)

    def buffered(self, samples: int) -> None:
        if self._prometheus:
            self._prometheus.buffered.set(samples)

    def summary(self) -> str:
        reads = ", ".join(f"{s} {n}" for s, n in sorted(self.reads.items())) or "none"
        errors = ", ".join(f"{s}/{k} {n}" for (s, k), n in sorted(self.errors.items())) or "none"
        skew = "unknown" if self.clock_skew_ms is None else f"{self.clock_skew_ms / 1_000:+.2f} s"
        return (f"reads: {reads}; errors: {errors}; samples {self.samples}, acknowledged {self.samples_acked}, "
                f"refused {sum(self.samples_refused.values())}, not stored {sum(self.samples_not_stored.values())}; "
                f"connections {self.connections}; clock skew {skew}")


class _Prometheus:
    def __init__(self, port: int) -> None:
        import prometheus_client as prom

        registry = prom.CollectorRegistry()
        self.reads: Any = prom.Counter("gridtwin_edge_reads_total", "Successful reads per source", ["source"],
                                       registry=registry)
        self.errors: Any = prom.Counter("gridtwin_edge_source_errors_total", "Failed reads or background errors",
                                        ["source", "kind"], registry=registry)
        self.samples: Any = prom.Counter("gridtwin_edge_samples_total", "Samples made", registry=registry)
        self.acked: Any = prom.Counter("gridtwin_edge_samples_acknowledged_total", "Samples the gateway took",
                                       registry=registry)
        self.not_stored: Any = prom.Counter("gridtwin_edge_samples_not_stored_total",
                                            "Acknowledged samples the cloud later said it did not store",
                                            ["reason"], registry=registry)
        self.buffered: Any = prom.Gauge("gridtwin_edge_buffered_samples", "Samples in the disk buffer",
                                        registry=registry)
        self.skew: Any = prom.Gauge("gridtwin_edge_clock_skew_seconds", "Gateway time minus agent time at hello",
                                    registry=registry)
        self.connected: Any = prom.Gauge("gridtwin_edge_connected", "1 while connected to the gateway",
                                         registry=registry)
        prom.start_http_server(port, registry=registry)
