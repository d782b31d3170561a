"""Where ingest hands committed telemetry to the digital twins.

The ingest consumer calls `deliver` after a batch is durable in Postgres and before it commits
the batch's offsets, so a batch the twins did not accept is fetched again. Consequences for an
implementation: `deliver` returns only once the twins hold the batch (that is the backpressure
path from slow twins to the consumers), and twins must ignore samples they already applied
(after a crash the same batch arrives again; samples carry device id and timestamp).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord


class TwinSink(Protocol):
    async def deliver(self, records: Sequence[TelemetryRecord]) -> None: ...


class NoTwins:
    """Until the twin runtime exists: accepts everything, keeps nothing."""

    async def deliver(self, records: Sequence[TelemetryRecord]) -> None:
        return None
