"""The simulator's ledger: every sample a simulated device generated, and what became of it.

Tests and benchmarks compare it with the store: each generated sample must end up stored
exactly once (or have been refused with a reason the ledger recorded).
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from dataclasses import dataclass, field


def _int64s() -> array[int]:
    return array("q")


@dataclass
class Ledger:
    # Timestamps (ms) as packed int64 arrays: a 10,000-device soak generates ~100,000 a minute, and
    # as Python lists of ints the ledger alone grew the fleet process by tens of MiB a minute.
    generated: dict[str, array[int]] = field(default_factory=lambda: defaultdict(_int64s))
    acknowledged: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refused: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    # Acknowledged samples a SampleNotice later named as not stored: (timestamp ms, reason). Also
    # counted as acknowledged: the store holds the first values sent for their timestamps.
    not_stored: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    dropped_by_device: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # When the ack for a batch arrived, keyed by device: (newest sample ts, ack time) — latency
    ack_latency_ms: array[int] = field(default_factory=_int64s)
    # Command ids each device received, every delivery (a redelivered command appears twice)
    commands_received: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # When any device tried to connect (wall clock ms): how hard a fleet knocks after an outage
    connection_attempts_ms: list[int] = field(default_factory=list)

    def generated_total(self) -> int:
        return sum(len(v) for v in self.generated.values())

    def acknowledged_total(self) -> int:
        return sum(self.acknowledged.values())

    def refused_total(self) -> int:
        return sum(len(v) for v in self.refused.values())

    def outstanding(self) -> int:
        """Generated samples neither acknowledged nor refused yet."""
        return self.generated_total() - self.acknowledged_total() - self.refused_total()
