"""Energy flows of a home and the ratios read from them. Pure; energy in Wh, time in seconds.

The quantities come straight from the rollups' energy channels (`ENERGY_FIELDS`), each
integrated per interval from the samples at ingest (services/telemetry/energy.py), so a sum over
buckets of any resolution is exact:

- battery energy in (`battery_charge_wh`) and out (`battery_discharge_wh`), solar production,
  home consumption, grid import and export (site power split by sign per interval);
- `solar_direct_wh`: solar the home used as it was produced, ∫ max(min(solar, load), 0) dt per
  interval. It needs the per-interval curves: per-bucket totals would count a sunny morning
  and an evening load in the same hour as direct use;
- `covered_s`: seconds with data (never across a gap longer than the platform's `max_gap_s`);
  `span_s` is what the range asked for, so `coverage` tells how much of it had data.

Derived, with the conventions the smart-meter and PV apps use:

- solar self-consumed = solar − export (into the home directly or through the battery);
- self-consumption ratio = self-consumed solar / solar production;
- self-sufficiency ratio = (consumption − grid import) / consumption, clamped to [0, 1] (a
  battery charged from the grid and its losses can make import exceed consumption).

A ratio whose denominator is zero (no solar, no consumption) is None, not 0.

A signal a device did not report is not 0 either. Each channel is integrated only over intervals
whose two samples reported its signal, and `<signal>_covered_s` (site, battery, solar, load)
says how many seconds those were: a channel whose signal was never reported in the period is
"not reported" (`energy_wh(channel)` → None), and so is every figure derived from it (a home
without a load meter has no self-sufficiency, not 0 %). Where a signal was reported for part of
the period, its figures cover that part (compare its covered seconds with `covered_s`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.telemetry.energy import CHANNEL_COVERAGE, ENERGY_FIELDS

Floats = npt.NDArray[np.float64]
E = {name: i for i, name in enumerate(ENERGY_FIELDS)}
CHANNELS: tuple[str, ...] = tuple(CHANNEL_COVERAGE)   # the energy channels, in Wh


@dataclass(frozen=True)
class Flows:
    battery_charge_wh: float = 0.0
    battery_discharge_wh: float = 0.0
    solar_wh: float = 0.0
    load_wh: float = 0.0
    grid_import_wh: float = 0.0
    grid_export_wh: float = 0.0
    covered_s: float = 0.0
    solar_direct_wh: float = 0.0
    site_covered_s: float = 0.0
    battery_covered_s: float = 0.0
    solar_covered_s: float = 0.0
    load_covered_s: float = 0.0
    span_s: float = 0.0

    @staticmethod
    def from_energy(energy: Floats, span_s: float) -> Flows:
        """From one row of energy in ENERGY_FIELDS order."""
        values = {name: float(energy[i]) for name, i in E.items()}
        return Flows(**values, span_s=float(span_s))

    def reported(self, *signals: str) -> bool:
        """Whether each signal ("site", "battery", "solar", "load") was reported in the period:
        it covers some seconds, or its channels hold energy (which only covered intervals give)."""
        return all(self._covered(f"{signal}_covered_s") for signal in signals)

    def _covered(self, coverage: str) -> bool:
        return getattr(self, coverage) > 0 or any(
            getattr(self, channel) != 0 for channel, fields in CHANNEL_COVERAGE.items() if coverage in fields)

    def energy_wh(self, channel: str) -> float | None:
        """A channel's energy (one of CHANNELS); None when its signal was not reported."""
        return float(getattr(self, channel)) if all(map(self._covered, CHANNEL_COVERAGE[channel])) else None

    @property
    def solar_self_consumed_wh(self) -> float | None:
        if not self.reported("solar", "site"):
            return None
        return min(max(self.solar_wh - self.grid_export_wh, 0.0), self.solar_wh)

    @property
    def self_consumption_ratio(self) -> float | None:
        consumed = self.solar_self_consumed_wh
        return consumed / self.solar_wh if consumed is not None and self.solar_wh > 0 else None

    @property
    def direct_use_ratio(self) -> float | None:
        """Share of solar production used as it was produced."""
        return self.solar_direct_wh / self.solar_wh if self.solar_wh > 0 and self.reported("load") else None

    @property
    def self_sufficiency_ratio(self) -> float | None:
        if self.load_wh <= 0 or not self.reported("site"):
            return None
        return min(max((self.load_wh - self.grid_import_wh) / self.load_wh, 0.0), 1.0)

    @property
    def coverage(self) -> float | None:
        return self.covered_s / self.span_s if self.span_s > 0 else None
