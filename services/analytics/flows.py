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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.telemetry.energy import ENERGY_FIELDS

Floats = npt.NDArray[np.float64]
E = {name: i for i, name in enumerate(ENERGY_FIELDS)}


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
    span_s: float = 0.0

    @staticmethod
    def from_energy(energy: Floats, span_s: float) -> Flows:
        """From one row of energy in ENERGY_FIELDS order."""
        values = {name: float(energy[i]) for name, i in E.items()}
        return Flows(**values, span_s=float(span_s))

    @property
    def solar_self_consumed_wh(self) -> float:
        return min(max(self.solar_wh - self.grid_export_wh, 0.0), self.solar_wh)

    @property
    def self_consumption_ratio(self) -> float | None:
        return self.solar_self_consumed_wh / self.solar_wh if self.solar_wh > 0 else None

    @property
    def direct_use_ratio(self) -> float | None:
        """Share of solar production used as it was produced."""
        return self.solar_direct_wh / self.solar_wh if self.solar_wh > 0 else None

    @property
    def self_sufficiency_ratio(self) -> float | None:
        if self.load_wh <= 0:
            return None
        return min(max((self.load_wh - self.grid_import_wh) / self.load_wh, 0.0), 1.0)

    @property
    def coverage(self) -> float | None:
        return self.covered_s / self.span_s if self.span_s > 0 else None
