"""Fronius inverters (Symo, Primo, Gen24, with or without battery) through the Solar API v1, read
with pyfronius: `GetPowerFlowRealtimeData` every poll, `GetStorageRealtimeData` and
`GetMeterRealtimeData` every `detail_interval_s` (the datalogger answers slowly; those change little).

Signs (Fronius → device protocol), from the power flow's `Site`:
- P_Grid > 0 is import → site_power_w = P_Grid;
- P_Load < 0 is consumption → load_power_w = −P_Load;
- P_Akku > 0 is discharge → battery_power_w = P_Akku;
- P_PV > 0 is production → solar_power_w = P_PV;
- null (no such component, or the inverter asleep at night) → not reported.
The state of charge is the inverter's `SOC` in the power flow, else the storage controller's
`StateOfCharge_Relative`. The meter gives the grid frequency (an extra); its power is not used
(its sign depends on where the meter sits: P_Grid already says it right).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from pyfronius import (
    API_VERSION,
    BadStatusError,
    Fronius,
    FroniusConnectionError,
    FroniusError,
    InvalidAnswerError,
    NotSupportedError,
)

from edge import units
from edge.adapters import http
from edge.adapters.base import Adapter, BadAnswer, DeviceRefused, SourceError, TimedOut, Unreachable
from edge.clock import Clock
from edge.model import BATTERY, LOAD, SITE, SOC, SOLAR, Reading, Snapshot, Unit

# ------------------------------------------------------------------ mapping (pure)

# pyfronius key → (signal, sign that turns Fronius's convention into the protocol's)
_POWER_FLOW = (("power_grid", SITE, 1.0), ("power_load", LOAD, -1.0), ("power_battery", BATTERY, 1.0),
               ("power_photovoltaics", SOLAR, 1.0))


def _value(sensor: Mapping[str, Any], key: str) -> tuple[Any, str] | None:
    entry = sensor.get(key)
    if not isinstance(entry, Mapping) or entry.get("value") is None:
        return None
    return entry["value"], str(entry.get("unit", ""))


def power_flow_readings(sensor: Mapping[str, Any], at_ms: int) -> tuple[Reading, ...]:
    """pyfronius's `current_power_flow()` → readings."""
    out = []
    try:
        for key, signal, sign in _POWER_FLOW:
            found = _value(sensor, key)
            if found is not None:
                out.append(Reading(signal, sign * units.watts(found[0], found[1] or "W"), Unit.WATT, at_ms))
        soc = _value(sensor, "state_of_charge")
        if soc is not None:
            out.append(Reading(SOC, units.percent(soc[0], soc[1] or "%"), Unit.PERCENT, at_ms))
    except (units.UnitError, TypeError, ValueError) as exc:
        raise BadAnswer(f"power flow: {exc}") from exc
    return tuple(out)


def storage_readings(sensor: Mapping[str, Any], at_ms: int) -> tuple[Reading, ...]:
    """pyfronius's `current_system_storage_data()` → the first storage's state of charge and cell
    temperature."""
    storages = sensor.get("storages")
    if not isinstance(storages, Mapping) or not storages:
        return ()
    first = storages[sorted(storages)[0]]
    out = []
    try:
        soc = _value(first, "state_of_charge")
        if soc is not None:
            out.append(Reading(SOC, units.percent(soc[0], soc[1] or "%"), Unit.PERCENT, at_ms))
        temperature = _value(first, "temperature_cell")
        if temperature is not None:
            out.append(Reading("battery_temperature_c", float(temperature[0]), Unit.CELSIUS, at_ms))
    except (units.UnitError, TypeError, ValueError) as exc:
        raise BadAnswer(f"storage: {exc}") from exc
    return tuple(out)


def meter_readings(sensor: Mapping[str, Any], at_ms: int) -> tuple[Reading, ...]:
    meters = sensor.get("meters")
    if not isinstance(meters, Mapping) or not meters:
        return ()
    frequency = _value(meters[sorted(meters)[0]], "frequency_phase_average")
    if frequency is None:
        return ()
    try:
        return (Reading("grid_frequency_hz", float(frequency[0]), Unit.HERTZ, at_ms),)
    except (TypeError, ValueError) as exc:
        raise BadAnswer(f"meter: {exc}") from exc


def merged(flow: tuple[Reading, ...], *details: tuple[Reading, ...]) -> tuple[Reading, ...]:
    """The power flow's readings, then the details' signals the flow lacks."""
    have = {r.signal for r in flow}
    out = list(flow)
    for readings in details:
        for r in readings:
            if r.signal not in have:
                out.append(r)
                have.add(r.signal)
    return tuple(out)


# ------------------------------------------------------------------ the adapter


class FroniusAdapter(Adapter):
    kind = "fronius"

    def __init__(self, name: str, clock: Clock, *, url: str, timeout_s: float = 5.0,
                 detail_interval_s: float = 5.0) -> None:
        super().__init__(name, clock)
        self._url = url
        self._timeout_s = timeout_s
        self._detail_interval_ms = int(detail_interval_s * 1_000)
        self._session: aiohttp.ClientSession | None = None
        self._fronius: Fronius | None = None
        self._details: tuple[Reading, ...] = ()
        self._details_at_ms: int | None = None
        self._detail_failures = 0   # consecutive: a datalogger without storage answers 404 for good

    def describe(self) -> str:
        return f"the Fronius at {self._url}"

    async def start(self) -> None:
        if self._session is None:
            self._session = http.session(self._timeout_s)
            self._fronius = Fronius(self._session, self._url, API_VERSION.V1)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def read(self) -> Snapshot:
        assert self._fronius is not None, "start() the adapter first"
        now_ms = self.clock.now_ms()
        # After three failed rounds of details in a row, ask for them ten times less often.
        interval_ms = self._detail_interval_ms * (10 if self._detail_failures >= 3 else 1)
        flow_sensor: Any
        if self._details_at_ms is None or now_ms - self._details_at_ms >= interval_ms:
            self._details_at_ms = now_ms
            results: list[Any] = await asyncio.gather(
                self._call(self._fronius.current_power_flow(), "power flow"),
                self._call(self._fronius.current_system_storage_data(), "storage"),
                self._call(self._fronius.current_system_meter_data(), "meter"), return_exceptions=True)
            flow_sensor = results[0]
            self._details = self._detail_readings(results[1:], now_ms)
        else:
            flow_sensor = await self._call(self._fronius.current_power_flow(), "power flow")
        if isinstance(flow_sensor, BaseException):
            raise flow_sensor
        at_ms = self.clock.now_ms()
        return Snapshot(self.name, at_ms, merged(power_flow_readings(flow_sensor, at_ms), self._details))

    def _detail_readings(self, details: list[Any], at_ms: int) -> tuple[Reading, ...]:
        out: tuple[Reading, ...] = ()
        failed = 0
        for result, mapper in zip(details, (storage_readings, meter_readings), strict=True):
            if isinstance(result, SourceError):
                self._errors.append(result)   # counted; the power flow still makes the snapshot
                failed += 1
            elif isinstance(result, Mapping):
                try:
                    out += mapper(result, at_ms)
                except SourceError as error:
                    self._errors.append(error)
                    failed += 1
        self._detail_failures = self._detail_failures + 1 if failed else 0
        return out

    async def _call(self, call: Any, what: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await call
            return result
        except NotSupportedError as exc:     # pyfronius also says this for a body that is not JSON
            raise BadAnswer(f"{self.describe()} {what}: {exc}") from exc
        except InvalidAnswerError as exc:
            raise BadAnswer(f"{self.describe()} {what}: {exc}") from exc
        except BadStatusError as exc:
            raise DeviceRefused(f"{self.describe()} {what}: {exc}") from exc
        except FroniusConnectionError as exc:
            if "timed out" in str(exc):
                raise TimedOut(f"{self.describe()} {what}: no answer in time") from exc
            raise Unreachable(f"{self.describe()} {what}: {exc}") from exc
        except FroniusError as exc:
            raise BadAnswer(f"{self.describe()} {what}: {exc}") from exc
        except (TypeError, KeyError, AttributeError) as exc:   # a structure pyfronius did not expect
            raise BadAnswer(f"{self.describe()} {what}: unexpected structure ({exc!r})") from exc
