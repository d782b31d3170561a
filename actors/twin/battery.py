"""The battery's energy as the twin integrates it from reported power. Pure, standard library only.

Battery power is integrated with the trapezoidal rule (Wh, discharge positive) from one battery
reading to the next, when they are at most `max_gap_s` apart; a longer gap forgets the full/empty
anchor and restarts the lowest point, since the energy over it is unknown. Near full (empty), a
battery that is not discharging (charging) marks a known energy level: the anchor, where the
integrals restart. The rules read the integrals (`rules.BatteryEnergyBalance`, `SocInconsistent`).
"""

from __future__ import annotations

from typing import Any

from actors.twin.config import EnergyBalanceParams

ANCHOR_NONE, ANCHOR_FULL, ANCHOR_EMPTY = 0, 1, 2
ANCHOR_NAMES = {ANCHOR_NONE: "none", ANCHOR_FULL: "full", ANCHOR_EMPTY: "empty"}
_MS_PER_H = 3_600_000.0
_ANCHOR_IDLE_W = 50.0


class BatteryEnergy:
    """Mutable slots on purpose: folded once per sample in the hot loop."""

    __slots__ = ("anchor", "anchor_soc_pct", "anchor_ts_ms", "min_out_wh", "net_out_wh", "prev_battery_w",
                 "prev_ts_ms", "throughput_wh")

    def __init__(self) -> None:
        self.prev_ts_ms = 0                    # the previous sample with battery power (0: none)
        self.prev_battery_w = 0.0
        self.anchor = ANCHOR_NONE
        self.anchor_soc_pct = 0.0
        self.anchor_ts_ms = 0
        self.net_out_wh = 0.0                  # ∫ battery power since the anchor (discharge > 0)
        self.min_out_wh = 0.0                  # lowest net_out_wh since the anchor or the last gap
        self.throughput_wh = 0.0               # ∫ |battery power| since the anchor

    def fold(self, ts: int, battery: float, soc: float | None, balance: EnergyBalanceParams) -> None:
        if self.prev_ts_ms:
            dt_ms = ts - self.prev_ts_ms
            if 0 < dt_ms <= balance.max_gap_s * 1_000:
                self.net_out_wh += (self.prev_battery_w + battery) * dt_ms / (2 * _MS_PER_H)
                self.throughput_wh += (abs(self.prev_battery_w) + abs(battery)) * dt_ms / (2 * _MS_PER_H)
                if self.net_out_wh < self.min_out_wh:
                    self.min_out_wh = self.net_out_wh
            elif dt_ms > 0:
                self.anchor = ANCHOR_NONE
                self.min_out_wh = self.net_out_wh
        if ts > self.prev_ts_ms:
            self.prev_ts_ms, self.prev_battery_w = ts, battery
        if soc is not None:
            if soc >= balance.full_soc_pct and battery <= _ANCHOR_IDLE_W:
                self._anchor(ANCHOR_FULL, soc, ts)
            elif soc <= balance.empty_soc_pct and battery >= -_ANCHOR_IDLE_W:
                self._anchor(ANCHOR_EMPTY, soc, ts)

    def _anchor(self, kind: int, soc: float, ts: int) -> None:
        self.anchor, self.anchor_soc_pct, self.anchor_ts_ms = kind, soc, ts
        self.net_out_wh = self.throughput_wh = self.min_out_wh = 0.0

    # ------------------------------------------------------------------ snapshots (format 1 and 2 layout)

    def to_snapshot(self) -> dict[str, Any]:
        return {"prev": [self.prev_ts_ms, self.prev_battery_w],
                "anchor": [self.anchor, self.anchor_soc_pct, self.anchor_ts_ms, self.net_out_wh, self.throughput_wh,
                           self.min_out_wh]}

    @staticmethod
    def from_snapshot(data: dict[str, Any]) -> BatteryEnergy:
        b = BatteryEnergy()
        b.prev_ts_ms, b.prev_battery_w = data["prev"]
        b.anchor, b.anchor_soc_pct, b.anchor_ts_ms, b.net_out_wh, b.throughput_wh = data["anchor"][:5]
        # Format 1 has no lowest point: the window starts at the restore (never a false alert).
        b.min_out_wh = data["anchor"][5] if len(data["anchor"]) > 5 else b.net_out_wh
        return b
