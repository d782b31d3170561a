"""Vendor units → the units readings are kept in: the one place that scales them.

Every function raises `UnitError` for a unit it does not know rather than guessing a factor: a
kW read as W is off by a thousand and would pass every range check downstream.
"""

from __future__ import annotations

import math
from decimal import Decimal

_POWER_W = {"w": 1.0, "kw": 1_000.0, "mw": 1_000_000.0}
_ENERGY_WH = {"wh": 1.0, "kwh": 1_000.0, "mwh": 1_000_000.0}


class UnitError(ValueError):
    pass


def _number(value: float | int | Decimal | str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise UnitError(f"not a finite number: {value!r}")
    return number


def watts(value: float | int | Decimal | str, unit: str) -> float:
    """`value` in `unit` (W, kW, MW; any case) as watts."""
    factor = _POWER_W.get(unit.strip().lower())
    if factor is None:
        raise UnitError(f"unknown power unit {unit!r}")
    return _number(value) * factor


def watt_hours(value: float | int | Decimal | str, unit: str) -> float:
    factor = _ENERGY_WH.get(unit.strip().lower())
    if factor is None:
        raise UnitError(f"unknown energy unit {unit!r}")
    return _number(value) * factor


def percent(value: float | int | Decimal | str, unit: str = "%") -> float:
    """A percentage given in % or as a fraction of one ("ratio")."""
    kind = unit.strip().lower()
    if kind in ("%", "pct", "percent"):
        return _number(value)
    if kind in ("ratio", "fraction", "1"):
        return _number(value) * 100.0
    raise UnitError(f"unknown percentage unit {unit!r}")


def scaled(raw: int, scale_factor: int) -> float:
    """A SunSpec point: raw × 10^scale_factor."""
    return raw * 10.0 ** scale_factor
