"""What crosses into a shard: a columnar batch of samples (numpy columns, cheap for Ray to move),
built from TelemetryRecords at the edge and split by shard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from actors.runtime.routing import shard_of
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from services.telemetry.signals import values as signal_values


@dataclass(frozen=True)
class ShardBatch:
    """Records of one or more installations; record r owns samples [offsets[r], offsets[r+1]).
    `values` columns: site, battery, solar, load (W), state of charge (%). `present` says which
    values the device reported (an absent one is NaN in `values`; a reported NaN stays NaN and
    present, for the twin to reject); None: every value was reported (the common case, no mask)."""

    installation_ids: list[str]
    device_ids: list[str]
    offsets: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    grid_status: npt.NDArray[np.int8]
    present: npt.NDArray[np.bool_] | None = None

    def column(self, k: int) -> list[float | None]:
        """Values of column k as a list, None where not reported."""
        column: list[float | None] = self.values[:, k].tolist()
        if self.present is not None:
            for i in np.flatnonzero(~self.present[:, k]).tolist():
                column[i] = None
        return column

    @property
    def samples(self) -> int:
        return len(self.ts_ms)

    @property
    def records(self) -> int:
        return len(self.installation_ids)


class _Builder:
    __slots__ = ("absent", "devices", "grid", "installations", "offsets", "rows", "ts")

    def __init__(self) -> None:
        self.installations: list[str] = []
        self.devices: list[str] = []
        self.offsets: list[int] = [0]
        self.ts: list[int] = []
        self.rows: list[tuple[float | None, ...]] = []   # None: not reported (NaN in the array)
        self.grid: list[int] = []
        self.absent: list[tuple[int, int]] = []   # (sample, column) not reported

    def add(self, record: TelemetryRecord) -> None:
        self.installations.append(record.installation_id)
        self.devices.append(record.device_id)
        ts, rows, grid = self.ts, self.rows, self.grid
        for s in record.samples:
            ts.append(s.timestamp_unix_ms)
            values = signal_values(s)
            if None in values:
                self.absent.extend((len(rows), k) for k, v in enumerate(values) if v is None)
            rows.append(values)
            grid.append(s.grid_status)
        self.offsets.append(len(ts))

    def build(self) -> ShardBatch:
        n = len(self.rows)
        present = None
        if self.absent:
            present = np.ones((n, 5), dtype=np.bool_)
            rows, columns = zip(*self.absent, strict=True)
            present[list(rows), list(columns)] = False
        return ShardBatch(
            self.installations, self.devices, np.asarray(self.offsets, dtype=np.int64),
            np.asarray(self.ts, dtype=np.int64),
            np.asarray(self.rows, dtype=np.float64).reshape(n, 5),
            np.asarray(self.grid, dtype=np.int8), present,
        )


def split_by_shard(records: Sequence[TelemetryRecord], shard_count: int) -> dict[int, ShardBatch]:
    """The records' samples per shard (records keep their order within a shard)."""
    builders: dict[int, _Builder] = {}
    for record in records:
        if not record.samples:
            continue
        index = shard_of(record.installation_id, shard_count)
        builder = builders.get(index)
        if builder is None:
            builder = builders[index] = _Builder()
        builder.add(record)
    return {index: b.build() for index, b in builders.items()}
