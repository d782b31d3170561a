"""Tariffs as values and the cost of energy under them. Pure.

A tariff has a flat import and export price (per kWh, in its currency) and optional time-of-use
windows in *local* wall-clock time: `start_minute` (inclusive) to `end_minute` (exclusive),
minutes of the day 0‥1440; a window whose end is not after its start wraps past midnight
(22:00–06:00). A window may be limited to ISO weekdays (1 = Monday) and months. The first window
that matches a moment sets its import price, and its export price when it has one; elsewhere
the flat prices apply. On a day of 23 or 25 hours the windows keep their wall-clock times: an
evening peak from 17:00 to 21:00 is four hours on every day.

Cost is priced per bucket at the bucket's local start; the analytics read buckets that never
straddle a window boundary (`localtime.read_resolution` with `Tariff.boundary_minutes`), so the
price is constant over each bucket and the cost exact. Alongside the actual cost, two
counterfactuals of the same home with the same consumption and production:

- without the battery: per interval the grid supplies consumption minus direct solar use and
  takes the rest of the solar: import = load − direct, export = solar − direct;
- without battery and without solar: the grid supplies all consumption.

`battery_savings` = cost without battery − actual cost; `solar_savings` = cost without either −
cost without battery; `total_savings` is their sum. The counterfactuals need consumption and
production: for a home whose load or solar power was not reported they are None, not a cost
computed from 0 Wh (`Cost.counterfactual`). Battery losses disappear with the battery in
the counterfactual, and demand charges and fixed daily charges are not modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from gridtwin.errors import InvalidArgument
from services.analytics.localtime import LocalClock

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
MINUTES_PER_DAY = 1_440

# Columns of a cost matrix (`cost_components`), one row per bucket, in currency units.
COST_FIELDS: tuple[str, ...] = (
    "import_cost", "export_revenue",
    "no_battery_import_cost", "no_battery_export_revenue",
    "no_solar_import_cost",
)


class TariffError(InvalidArgument, ValueError):
    """A tariff that cannot be priced (bad window, negative or non-finite price)."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)


@dataclass(frozen=True)
class TouWindow:
    start_minute: int
    end_minute: int
    import_price_per_kwh: float
    export_price_per_kwh: float | None = None  # None: the tariff's flat export price
    weekdays: frozenset[int] = frozenset()      # ISO 1‥7; empty: every day
    months: frozenset[int] = frozenset()        # 1‥12; empty: every month
    name: str = ""

    def covers(self, clock: LocalClock) -> npt.NDArray[np.bool_]:
        m = clock.minute
        start, end = self.start_minute, self.end_minute % MINUTES_PER_DAY
        if self.end_minute == MINUTES_PER_DAY and start == 0:
            inside = np.ones(len(m), dtype=bool)
        elif start < end:
            inside = (m >= start) & (m < end)
        else:  # wraps past midnight
            inside = (m >= start) | (m < end)
        if self.weekdays:
            inside &= np.isin(clock.weekday, sorted(self.weekdays))
        if self.months:
            inside &= np.isin(clock.month, sorted(self.months))
        return inside


@dataclass(frozen=True)
class Tariff:
    import_price_per_kwh: float
    export_price_per_kwh: float = 0.0
    windows: tuple[TouWindow, ...] = field(default_factory=tuple)
    currency: str = ""

    def __post_init__(self) -> None:
        validate(self)

    @property
    def is_flat(self) -> bool:
        return not self.windows

    def boundary_minutes(self) -> set[int]:
        """Local minutes of the day at which a price may change."""
        found: set[int] = set()
        for w in self.windows:
            found.update((w.start_minute % MINUTES_PER_DAY, w.end_minute % MINUTES_PER_DAY))
        return found

    def prices(self, clock: LocalClock) -> tuple[Floats, Floats]:
        """Import and export price per kWh at each local moment of `clock`."""
        n = len(clock.minute)
        import_price = np.full(n, self.import_price_per_kwh)
        export_price = np.full(n, self.export_price_per_kwh)
        for w in reversed(self.windows):  # earlier windows overwrite later ones: the first match wins
            inside = w.covers(clock)
            import_price[inside] = w.import_price_per_kwh
            if w.export_price_per_kwh is not None:
                export_price[inside] = w.export_price_per_kwh
        return import_price, export_price


def flat(import_price_per_kwh: float, export_price_per_kwh: float = 0.0, currency: str = "") -> Tariff:
    return Tariff(import_price_per_kwh, export_price_per_kwh, (), currency)


def validate(tariff: Tariff) -> None:
    def price(value: float, what: str) -> None:
        if not math.isfinite(value) or value < 0:
            raise TariffError(f"{what} must be a finite price ≥ 0, got {value}")

    price(tariff.import_price_per_kwh, "import_price_per_kwh")
    price(tariff.export_price_per_kwh, "export_price_per_kwh")
    for i, w in enumerate(tariff.windows):
        where = f"windows[{i}]"
        if not (0 <= w.start_minute < MINUTES_PER_DAY and 0 < w.end_minute <= MINUTES_PER_DAY):
            raise TariffError(f"{where}: need 0 ≤ start_minute < 1440 and 0 < end_minute ≤ 1440")
        if w.start_minute == w.end_minute:
            raise TariffError(f"{where}: empty window (start_minute = end_minute)")
        price(w.import_price_per_kwh, f"{where}.import_price_per_kwh")
        if w.export_price_per_kwh is not None:
            price(w.export_price_per_kwh, f"{where}.export_price_per_kwh")
        if not w.weekdays <= set(range(1, 8)):
            raise TariffError(f"{where}: weekdays are ISO 1 (Monday) to 7 (Sunday)")
        if not w.months <= set(range(1, 13)):
            raise TariffError(f"{where}: months are 1 to 12")


def cost_components(tariff: Tariff, clock: LocalClock, energy_wh: dict[str, Floats]) -> Floats:
    """Per bucket, in COST_FIELDS order: the actual import cost and export revenue, those of the
    home without battery, and the import cost of the home without battery and solar.
    `energy_wh` holds grid_import_wh, grid_export_wh, load_wh, solar_wh, solar_direct_wh."""
    import_price, export_price = tariff.prices(clock)
    load, solar, direct = energy_wh["load_wh"], energy_wh["solar_wh"], energy_wh["solar_direct_wh"]
    to_kwh = 1 / 1_000
    return np.column_stack([
        energy_wh["grid_import_wh"] * to_kwh * import_price,
        energy_wh["grid_export_wh"] * to_kwh * export_price,
        np.maximum(load - direct, 0.0) * to_kwh * import_price,
        np.maximum(solar - direct, 0.0) * to_kwh * export_price,
        load * to_kwh * import_price,
    ])


@dataclass(frozen=True)
class Cost:
    import_cost: float = 0.0
    export_revenue: float = 0.0
    no_battery_import_cost: float = 0.0
    no_battery_export_revenue: float = 0.0
    no_solar_import_cost: float = 0.0
    counterfactual: bool = True   # load and solar power were reported: the homes without can be priced

    @staticmethod
    def from_components(row: Floats, counterfactual: bool = True) -> Cost:
        import_cost, export_revenue, no_battery_import, no_battery_export, no_solar_import = (float(v) for v in row)
        return Cost(import_cost, export_revenue, no_battery_import, no_battery_export, no_solar_import, counterfactual)

    @property
    def net_cost(self) -> float:
        return self.import_cost - self.export_revenue

    @property
    def no_battery_net_cost(self) -> float | None:
        return self.no_battery_import_cost - self.no_battery_export_revenue if self.counterfactual else None

    @property
    def no_solar_no_battery_net_cost(self) -> float | None:
        return self.no_solar_import_cost if self.counterfactual else None

    @property
    def battery_savings(self) -> float | None:
        without = self.no_battery_net_cost
        return without - self.net_cost if without is not None else None

    @property
    def solar_savings(self) -> float | None:
        without, neither = self.no_battery_net_cost, self.no_solar_no_battery_net_cost
        return neither - without if without is not None and neither is not None else None

    @property
    def total_savings(self) -> float | None:
        neither = self.no_solar_no_battery_net_cost
        return neither - self.net_cost if neither is not None else None


def _minute(value: object, field: str) -> int:
    """Minutes of the day from an int or "HH:MM" ("24:00" = 1440)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and ":" in value:
        hours, _, minutes = value.partition(":")
        if hours.isdigit() and minutes.isdigit():
            return int(hours) * 60 + int(minutes)
    raise TariffError(f"{field}: minutes of the day or HH:MM, got {value!r}")


def tariff_from_dict(data: dict[str, Any]) -> Tariff:
    """A tariff from plain data (a JSON file): prices per kWh, windows with `start`/`end` as
    "HH:MM" (or `start_minute`/`end_minute`), optional `weekdays`, `months`, `name`,
    `export_price_per_kwh`. Raises TariffError."""
    try:
        windows = []
        for i, raw in enumerate(data.get("windows") or []):
            w = dict(raw)
            export = w.get("export_price_per_kwh")
            windows.append(TouWindow(
                _minute(w.get("start", w.get("start_minute")), f"windows[{i}].start"),
                _minute(w.get("end", w.get("end_minute")), f"windows[{i}].end"),
                float(w["import_price_per_kwh"]), None if export is None else float(export),
                frozenset(int(d) for d in w.get("weekdays", ())), frozenset(int(m) for m in w.get("months", ())),
                str(w.get("name", ""))))
        return Tariff(float(data["import_price_per_kwh"]), float(data.get("export_price_per_kwh", 0.0)),
                      tuple(windows), str(data.get("currency", "")))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, TariffError):
            raise
        raise TariffError(f"not a tariff: {exc!r}") from exc
