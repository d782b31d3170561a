"""What an installation's devices reported, as its twin keeps it. Pure, standard library only.

- Idempotent per device: `devices` holds each device's newest applied sample time; the twin
  ignores a sample at or before it.
- The reported state is the newest sample's; a signal it did not report is None, never 0. The
  newest value of every signal, with its time, is kept as well (`held` for the signals the newest
  sample lacks), so `last_reported()` answers "when did we last hear the state of charge".
- The run of unchanged readings (a stuck sensor) and the counts of applied, ignored and rejected
  samples.
"""

from __future__ import annotations

from typing import Any

from actors.twin.model import GridStatus, Sample


class Reported:
    """Mutable slots on purpose: folded once per sample in the hot loop."""

    __slots__ = ("applied", "battery_power_w", "device_id", "devices", "grid_status", "held", "ignored",
                 "last_ts_ms", "load_power_w", "rejected", "site_power_w", "soc_pct", "solar_power_w",
                 "unchanged_count", "unchanged_since_ms")

    def __init__(self) -> None:
        self.devices: dict[str, int] = {}     # device → newest applied sample timestamp
        self.last_ts_ms = 0                    # newest applied sample of any device (0: none)
        self.device_id = ""
        self.site_power_w: float | None = None
        self.battery_power_w: float | None = None
        self.solar_power_w: float | None = None
        self.load_power_w: float | None = None
        self.soc_pct: float | None = None
        # Signals the newest sample did not report → their newest value and its time (None: none).
        self.held: dict[str, tuple[float, int]] | None = None
        self.grid_status = int(GridStatus.UNSPECIFIED)
        self.unchanged_since_ms = 0
        self.unchanged_count = 0
        self.applied = 0
        self.ignored = 0
        self.rejected = 0

    def fold(self, s: Sample, complete: bool) -> None:
        """Takes an accepted sample in (`complete`: it reports every signal)."""
        ts, battery, soc = s.ts_ms, s.battery_power_w, s.state_of_charge_pct
        # Unreported signals compare equal (None == None): a stuck meter is stuck on what it reports.
        if (self.applied and s.site_power_w == self.site_power_w and battery == self.battery_power_w
                and s.solar_power_w == self.solar_power_w and s.load_power_w == self.load_power_w
                and soc == self.soc_pct):
            self.unchanged_count += 1
        else:
            self.unchanged_count, self.unchanged_since_ms = 0, ts
        self.devices[s.device_id] = ts
        if ts >= self.last_ts_ms:
            if not complete or self.held is not None:
                self._hold_newest(s)
            self.last_ts_ms = ts
            self.device_id = s.device_id
            self.site_power_w, self.battery_power_w = s.site_power_w, battery
            self.solar_power_w, self.load_power_w = s.solar_power_w, s.load_power_w
            self.soc_pct, self.grid_status = soc, s.grid_status
        elif (self.site_power_w is None or self.battery_power_w is None or self.solar_power_w is None
              or self.load_power_w is None or self.soc_pct is None):
            self._hold_older(s)
        self.applied += 1

    def newest(self) -> tuple[tuple[str, float | None], ...]:
        return (("site_power_w", self.site_power_w), ("battery_power_w", self.battery_power_w),
                ("solar_power_w", self.solar_power_w), ("load_power_w", self.load_power_w),
                ("state_of_charge_pct", self.soc_pct))

    def _hold_newest(self, s: Sample) -> None:
        """`s` becomes the newest sample: a signal it lacks keeps its newest value (the one of the
        sample it replaces, or one held already); a signal it reports needs none held."""
        held = self.held or {}
        for name, before in self.newest():
            if getattr(s, name) is not None:
                held.pop(name, None)
            elif before is not None:
                held[name] = (before, self.last_ts_ms)
        self.held = held or None

    def _hold_older(self, s: Sample) -> None:
        """A sample older than the newest (another device's) may carry a signal the newest lacks."""
        held = self.held or {}
        for name, newest in self.newest():
            value = getattr(s, name)
            if newest is None and value is not None:
                known = held.get(name)
                if known is None or known[1] < s.ts_ms:
                    held[name] = (value, s.ts_ms)
        self.held = held or None

    def last_reported(self) -> dict[str, tuple[float, int]]:
        """Every signal ever reported: its newest value and that sample's time (Unix ms)."""
        newest = {name: (value, self.last_ts_ms) for name, value in self.newest() if value is not None}
        return {**(self.held or {}), **newest}

    # ------------------------------------------------------------------ snapshots (format 1 and 2 layout)

    def to_snapshot(self, mode: int) -> dict[str, Any]:
        """`mode`: the device's reported operation mode, kept in the same list as format 1 did."""
        return {
            "devices": dict(self.devices), "last_ts_ms": self.last_ts_ms,
            "reported": [self.device_id, self.site_power_w, self.battery_power_w, self.solar_power_w,
                         self.load_power_w, self.soc_pct, self.grid_status, mode],   # null: not reported
            "held": {name: list(value_at) for name, value_at in self.held.items()} if self.held else None,
            "unchanged": [self.unchanged_since_ms, self.unchanged_count],
            "counts": [self.applied, self.ignored, self.rejected],
        }

    @staticmethod
    def from_snapshot(data: dict[str, Any]) -> tuple[Reported, int]:
        """The reported state and the device's operation mode (protocol number) of a snapshot."""
        r = Reported()
        r.devices = {str(k): int(v) for k, v in data["devices"].items()}
        r.last_ts_ms = int(data["last_ts_ms"])
        (r.device_id, r.site_power_w, r.battery_power_w, r.solar_power_w, r.load_power_w, r.soc_pct,
         r.grid_status, mode) = data["reported"]
        r.held = {name: (float(v), int(at)) for name, (v, at) in data["held"].items()} if data.get("held") else None
        r.unchanged_since_ms, r.unchanged_count = data["unchanged"]
        r.applied, r.ignored, r.rejected = data["counts"]
        return r, int(mode)
