"""SunSpec devices over Modbus TCP (inverters, meters, storage): pymodbus moves the registers, the
SunSpec Alliance's model definitions (shipped by pysunspec2, `sunspec2/models/json`) say where each
point lies, its type and its scale factor.

The adapter finds the SunSpec map ("SunS" at 40000, 0 or 50000), lists its models, and reads every
poll the ones it maps:

    model                          point         →  signal               convention
    101–103, 111–113 inverter      W (AC)           solar_power_w        > 0 produces (a PV inverter)
    201–204, 211–214 meter         W                site_power_w         `meter_sign`: import positive (SunSpec's,
                                                                         the default) or "export_positive"
    meter, else inverter           Hz               grid_frequency_hz
    802 battery                    W                battery_power_w      `battery_sign`: the model leaves it to the
                                                                         vendor: "discharge_positive" (default) or
                                                                         "charge_positive"
    802 battery, else 124 storage  SoC, ChaState    state_of_charge_pct

Integer points are raw × 10^SF (their `*_SF` point); the "not implemented" patterns (0x8000,
0xFFFF, NaN, ...) are unreported, never 0.

Control, through model 124 (basic storage controls), with `control = true`:
- SetBackupReserve → MinRsvPct;
- battery power setpoints (control plans): both limits on (StorCtl_Mod = CHARGE|DISCHARGE) and the
  window [−OutWRte, InWRte] (in % of WChaMax) squeezed to the setpoint, as storage inverters read
  it: discharging at P sets OutWRte = P and InWRte = −P; charging at P sets InWRte = P, OutWRte = −P
  and ChaGriSet = GRID; holding sets both 0. InOutWRte_RvrtTms (`revert_s`) makes the inverter
  return to its own control if the agent stops refreshing the setpoint;
- handing the battery back (plan ended or cleared, SetMode self_consumption): StorCtl_Mod = 0.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from edge.adapters.base import Adapter, BadAnswer, DeviceRefused, TimedOut, Unreachable
from edge.clock import Clock
from edge.control import ApplyMode, ApplyReserve, Capabilities, DeviceAction
from edge.model import BATTERY, SITE, SOC, SOLAR, DeviceState, OperationMode, Reading, Snapshot, Unit

SUNS = (0x5375, 0x6E53)           # "SunS"
BASE_ADDRESSES = (40_000, 0, 50_000)
END_MODEL = 0xFFFF
INVERTERS = (101, 102, 103, 111, 112, 113)
METERS = (201, 202, 203, 204, 211, 212, 213, 214)
STORAGE, BATTERY_MODEL, COMMON = 124, 802, 1
MAPPED = (*INVERTERS, *METERS, STORAGE, BATTERY_MODEL, COMMON)
MAX_REGISTERS_PER_READ = 125
CHARGE, DISCHARGE = 1, 2          # StorCtl_Mod bits
CHA_GRI_SET_GRID = 1
MODBUS_EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                     4: "device failure", 5: "acknowledge", 6: "device busy", 8: "memory parity error",
                     10: "gateway path unavailable", 11: "gateway target failed to respond"}

# ------------------------------------------------------------------ model layouts (pure)


@dataclass(frozen=True)
class Point:
    name: str
    offset: int                   # registers from the model's ID register
    size: int
    type: str
    sf: str | None


@functools.cache
def layout(model_id: int) -> dict[str, Point]:
    """The top-level points of a SunSpec model, from its official definition."""
    path = importlib.resources.files("sunspec2") / "models" / "json" / f"model_{model_id}.json"
    definition = json.loads(path.read_text())
    points: dict[str, Point] = {}
    offset = 0
    for p in definition["group"]["points"]:
        size = int(p.get("size", 1))
        points[p["name"]] = Point(p["name"], offset, size, p["type"], p.get("sf"))
        offset += size
    return points


_NOT_IMPLEMENTED = {"int16": 0x8000, "uint16": 0xFFFF, "enum16": 0xFFFF, "bitfield16": 0xFFFF, "sunssf": 0x8000,
                    "int32": 0x80000000, "uint32": 0xFFFFFFFF, "enum32": 0xFFFFFFFF, "bitfield32": 0xFFFFFFFF,
                    "acc16": 0, "acc32": 0}


def _raw(point: Point, registers: Sequence[int]) -> int | float | str | None:
    words = registers[point.offset:point.offset + point.size]
    if len(words) < point.size:
        return None
    if point.type == "string":
        return b"".join(w.to_bytes(2, "big") for w in words).rstrip(b"\0").decode("latin1").strip()
    if point.type == "float32":
        value = struct.unpack(">f", struct.pack(">HH", *words))[0]
        return None if math.isnan(value) else value
    raw = words[0] if point.size == 1 else (words[0] << 16) | words[1]
    if raw == _NOT_IMPLEMENTED.get(point.type, -1):
        return None
    if point.type in ("int16", "sunssf") and raw >= 0x8000:
        raw -= 0x10000
    elif point.type == "int32" and raw >= 0x80000000:
        raw -= 0x100000000
    return raw


def decode(model_id: int, registers: Sequence[int]) -> dict[str, Any]:
    """A model's registers (from its ID register on) → point values, scale factors applied;
    None for what the device does not implement."""
    points = layout(model_id)
    raw = {name: _raw(p, registers) for name, p in points.items()}
    out: dict[str, Any] = {}
    for name, p in points.items():
        value = raw[name]
        if p.sf is not None and isinstance(value, int):
            sf = raw[p.sf] if p.sf in raw else _constant(p.sf)
            value = value * 10.0 ** sf if isinstance(sf, int) else None
        out[name] = value
    return out


def _constant(sf: str) -> int | None:
    try:
        return int(sf)
    except ValueError:
        return None


def encode(model_id: int, values: Mapping[str, Any]) -> list[int]:
    """The registers of a model holding `values` (raw integers for integer points, floats for
    float32, text for strings; unset points read "not implemented") — the inverse of `decode`,
    for devices simulated in tests and benchmarks."""
    points = layout(model_id)
    total = sum(p.size for p in points.values())
    registers = [0] * total
    for p in points.values():
        if p.name == "ID":
            value: Any = model_id
        elif p.name == "L":
            value = total - 2
        else:
            value = values.get(p.name, _NOT_IMPLEMENTED.get(p.type, 0) if p.type != "float32" else math.nan)
        if p.type == "string":
            data = str(value or "").encode("latin1")[:2 * p.size].ljust(2 * p.size, b"\0")
            words = list(struct.unpack(f">{p.size}H", data))
        elif p.type == "float32":
            words = list(struct.unpack(">HH", struct.pack(">f", float(value))))
        elif p.type == "pad":
            words = [0x8000] * p.size
        else:
            raw = int(value) & (0xFFFF if p.size == 1 else 0xFFFFFFFF)
            words = [raw] if p.size == 1 else [raw >> 16, raw & 0xFFFF]
        registers[p.offset:p.offset + p.size] = words
    return registers


def readings(models: Mapping[int, Mapping[str, Any]], at_ms: int, *, meter_sign: str = "import_positive",
             battery_sign: str = "discharge_positive") -> tuple[Reading, ...]:
    """Decoded models (by id) → readings; see the module's table for the conventions."""
    out: list[Reading] = []
    inverter = next((models[m] for m in INVERTERS if m in models), None)
    meter = next((models[m] for m in METERS if m in models), None)
    if meter is not None and isinstance(meter.get("W"), int | float):
        out.append(Reading(SITE, _signed(meter["W"], meter_sign == "export_positive"), Unit.WATT, at_ms))
    if inverter is not None and isinstance(inverter.get("W"), int | float):
        out.append(Reading(SOLAR, float(inverter["W"]), Unit.WATT, at_ms))
    battery = models.get(BATTERY_MODEL)
    if battery is not None and isinstance(battery.get("W"), int | float):
        out.append(Reading(BATTERY, _signed(battery["W"], battery_sign == "charge_positive"), Unit.WATT, at_ms))
    soc = (battery or {}).get("SoC")
    if not isinstance(soc, int | float):
        soc = (models.get(STORAGE) or {}).get("ChaState")
    if isinstance(soc, int | float):
        out.append(Reading(SOC, float(soc), Unit.PERCENT, at_ms))
    hz = (meter or {}).get("Hz")
    if not isinstance(hz, int | float):
        hz = (inverter or {}).get("Hz")
    if isinstance(hz, int | float) and hz > 0:
        out.append(Reading("grid_frequency_hz", float(hz), Unit.HERTZ, at_ms))
    return tuple(out)


def _signed(value: float, flip: bool) -> float:
    return -float(value) if flip else float(value)


def storage_writes(storage: Mapping[str, Any], action: DeviceAction, *, revert_s: int) -> list[tuple[str, int]]:
    """The model-124 points to write (name, raw register value, in this order) for `action`, given
    the model's current decoded values (for WChaMax and the scale factors)."""
    if isinstance(action, ApplyReserve):
        return [("MinRsvPct", _to_raw(action.reserve_pct, storage.get("MinRsvPct_SF")))]
    if isinstance(action, ApplyMode) or action.power_w is None:
        return [("StorCtl_Mod", 0)]
    max_w = storage.get("WChaMax")
    if not isinstance(max_w, int | float) or max_w <= 0:
        raise DeviceRefused("the storage model reports no WChaMax: setpoints cannot be expressed")
    rate = min(100.0, abs(action.power_w) / max_w * 100.0)
    sf = storage.get("InOutWRte_SF")
    if action.power_w > 0:
        out_rate, in_rate = rate, -rate
    elif action.power_w < 0:
        out_rate, in_rate = -rate, rate
    else:
        out_rate = in_rate = 0.0
    writes = [("OutWRte", _to_raw(out_rate, sf, signed=True)), ("InWRte", _to_raw(in_rate, sf, signed=True))]
    if revert_s > 0:
        writes.append(("InOutWRte_RvrtTms", min(revert_s, 0xFFFE)))
    if action.power_w < 0:
        writes.append(("ChaGriSet", CHA_GRI_SET_GRID))
    writes.append(("StorCtl_Mod", CHARGE | DISCHARGE))
    return writes


def _to_raw(value: float, sf: Any, *, signed: bool = False) -> int:
    scale = sf if isinstance(sf, int) else 0
    raw = round(value / 10.0 ** scale)
    if signed:
        raw = max(-0x7FFF, min(0x7FFF, raw))
        return raw & 0xFFFF
    return max(0, min(0xFFFE, raw))


def applied_power_w(storage: Mapping[str, Any]) -> float | None:
    """The setpoint model 124 holds now (the inverse of `storage_writes`), None when off."""
    mode = storage.get("StorCtl_Mod")
    max_w = storage.get("WChaMax")
    if not isinstance(mode, int) or mode & (CHARGE | DISCHARGE) != (CHARGE | DISCHARGE) or not max_w:
        return None
    out_rate, in_rate = storage.get("OutWRte") or 0.0, storage.get("InWRte") or 0.0
    if out_rate > 0:
        return out_rate / 100.0 * max_w
    if in_rate > 0:
        return -in_rate / 100.0 * max_w
    return 0.0


# ------------------------------------------------------------------ the adapter


class SunSpecAdapter(Adapter):
    kind = "sunspec"

    def __init__(self, name: str, clock: Clock, *, host: str, port: int = 502, unit_id: int = 1,
                 base_address: int | None = None, timeout_s: float = 3.0, meter_sign: str = "import_positive",
                 battery_sign: str = "discharge_positive", control: bool = False, revert_s: int = 120) -> None:
        super().__init__(name, clock)
        self._host, self._port, self._unit = host, port, unit_id
        self._bases = (base_address,) if base_address is not None else BASE_ADDRESSES
        self._meter_sign, self._battery_sign = meter_sign, battery_sign
        self._control, self._revert_s = control, revert_s
        self._timeout_s = timeout_s
        self._client_: AsyncModbusTcpClient | None = None   # made in the running loop (pymodbus needs one)
        self.models: dict[int, tuple[int, int]] = {}     # model id → (address of its ID register, length)
        self.values: dict[int, dict[str, Any]] = {}      # decoded, as last read

    def describe(self) -> str:
        return f"the SunSpec device at {self._host}:{self._port} (unit {self._unit})"

    async def start(self) -> None:
        pass   # connects on the first read, and again after any failure

    @property
    def _client(self) -> AsyncModbusTcpClient:
        if self._client_ is None:
            self._client_ = AsyncModbusTcpClient(self._host, port=self._port, timeout=self._timeout_s, retries=0,
                                                 reconnect_delay=0)
        return self._client_

    async def stop(self) -> None:
        if self._client_ is not None:
            self._client_.close()

    async def read(self) -> Snapshot:
        await self._connect()
        for model_id, (address, length) in self.models.items():
            if model_id in MAPPED and model_id != COMMON:
                self.values[model_id] = decode(model_id, await self._registers(address, length + 2))
        at_ms = self.clock.now_ms()
        return Snapshot(self.name, at_ms, readings(self.values, at_ms, meter_sign=self._meter_sign,
                                                   battery_sign=self._battery_sign))

    # ------------------------------------------------------------ control

    @property
    def capabilities(self) -> Capabilities:
        if not self._control:
            return super().capabilities
        if self.models and STORAGE not in self.models:
            return Capabilities(f"{self.describe()}, which has no storage model 124")
        return Capabilities(self.describe(), frozenset({OperationMode.SELF_CONSUMPTION}), backup_reserve=True,
                            power_setpoints=True)

    async def apply(self, action: DeviceAction) -> str:
        await self._connect()
        if STORAGE not in self.models:
            raise DeviceRefused(f"{self.describe()} has no storage model 124")
        address, length = self.models[STORAGE]
        storage = decode(STORAGE, await self._registers(address, length + 2))
        points = layout(STORAGE)
        for name, raw in storage_writes(storage, action, revert_s=self._revert_s):
            await self._write(address + points[name].offset, raw, f"{name} = {raw}")
        self.values[STORAGE] = decode(STORAGE, await self._registers(address, length + 2))
        if isinstance(action, ApplyReserve):
            return f"MinRsvPct {action.reserve_pct:g} %"
        power = applied_power_w(self.values[STORAGE])
        return "storage control off" if power is None else f"battery setpoint {power:g} W"

    async def device_state(self) -> DeviceState:
        storage = self.values.get(STORAGE, {})
        battery = self.values.get(BATTERY_MODEL, {})
        mode = storage.get("StorCtl_Mod")
        energy = battery.get("WHRtg")
        return DeviceState(
            mode=OperationMode.SELF_CONSUMPTION if mode == 0 else (OperationMode.AUTONOMOUS if mode else None),
            backup_reserve_pct=storage.get("MinRsvPct"),
            battery_nominal_energy_wh=float(energy) if isinstance(energy, int | float) else None,
            battery_max_power_w=storage.get("WChaMax"), firmware=str(self.values.get(COMMON, {}).get("Vr") or ""),
            config={f"sunspec.{k}": str(v) for k, v in self.values.get(COMMON, {}).items()
                    if k in ("Mn", "Md", "SN", "Vr") and v})

    def battery_limits(self) -> tuple[float | None, float | None]:
        soc = next((r.value for r in readings(self.values, 0) if r.signal == SOC), None)
        max_w = self.values.get(STORAGE, {}).get("WChaMax")
        return soc, float(max_w) if isinstance(max_w, int | float) else None

    # ------------------------------------------------------------ Modbus

    async def _connect(self) -> None:
        if not self._client.connected:
            try:
                connected = await self._client.connect()
            except (OSError, ModbusException) as exc:
                raise Unreachable(f"{self.describe()}: {exc}") from exc
            if not connected:
                raise Unreachable(f"{self.describe()}: cannot connect")
        if not self.models:
            self.models = await self.scan()
            if COMMON in self.models:
                address, length = self.models[COMMON]
                self.values[COMMON] = decode(COMMON, await self._registers(address, length + 2))

    async def identify(self) -> tuple[dict[int, tuple[int, int]], dict[str, Any]]:
        """The device's models and its common model (Mn, Md, SN, Vr, ...)."""
        await self._connect()
        return self.models, self.values.get(COMMON, {})

    async def scan(self) -> dict[int, tuple[int, int]]:
        """The models of the SunSpec map, by id: (address of the ID register, length)."""
        for base in self._bases:
            try:
                marker = await self._registers(base, 2)
            except DeviceRefused:
                continue
            if tuple(marker) != SUNS:
                continue
            models: dict[int, tuple[int, int]] = {}
            address = base + 2
            for _ in range(256):
                model_id, length = await self._registers(address, 2)
                if model_id == END_MODEL or length == 0:
                    return models
                models.setdefault(model_id, (address, length))
                address += 2 + length
            raise BadAnswer(f"{self.describe()}: the SunSpec map has no end marker")
        raise BadAnswer(f"{self.describe()}: no SunSpec map at {', '.join(map(str, self._bases))}")

    async def _registers(self, address: int, count: int) -> list[int]:
        out: list[int] = []
        while count > 0:
            n = min(count, MAX_REGISTERS_PER_READ)
            response = await self._call(self._client.read_holding_registers(address, count=n, device_id=self._unit),
                                         f"reading {n} registers at {address}")
            if len(response.registers) != n:
                raise BadAnswer(f"{self.describe()}: asked for {n} registers at {address}, got "
                                f"{len(response.registers)}")
            out += response.registers
            address += n
            count -= n
        return out

    async def _write(self, address: int, raw: int, what: str) -> None:
        await self._call(self._client.write_register(address, raw, device_id=self._unit), f"writing {what}")

    async def _call(self, call: Any, what: str) -> Any:
        try:
            response = await call
        except ModbusIOException as exc:
            self._client.close()
            raise TimedOut(f"{self.describe()} {what}: no answer in time") from exc
        except (ConnectionException, OSError) as exc:
            self._client.close()
            raise Unreachable(f"{self.describe()} {what}: {exc}") from exc
        except ModbusException as exc:
            self._client.close()
            raise BadAnswer(f"{self.describe()} {what}: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", None)
            raise DeviceRefused(f"{self.describe()} {what}: Modbus exception {code} "
                                f"({MODBUS_EXCEPTIONS.get(code or 0, 'unknown')})")
        return response
