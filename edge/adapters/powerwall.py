"""Tesla Powerwall (Backup Gateway 2 / Powerwall+) through its local HTTPS API, as pypowerwall
documents it: `POST /api/login/Basic` (user "customer", the gateway password), then
`/api/meters/aggregates`, `/api/system_status/soe`, `/api/system_status/grid_status` for readings
and `/api/operation` (+ `/api/config/completed`) for the operation mode and backup reserve.

Signs: the gateway's conventions are the device protocol's (site > 0 imports, battery > 0
discharges, solar > 0 produces, load > 0 consumes), so the powers map one to one, in W. The state
of charge is the gateway's `percentage` as it reports it (the Tesla app shows it rescaled to
hide a 5 % reserve; the platform keeps the device's value). A meter the site lacks (no solar)
is absent from the aggregates and stays unreported.

Control: SetMode (self_consumption, backup, autonomous) and SetBackupReserve. The local API has
no power setpoints, so control plans are rejected; gateways whose firmware no longer takes
changes locally answer the change with an HTTP error, which becomes the REJECTED reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from edge.adapters import http
from edge.adapters.base import Adapter, BadAnswer, DeviceRefused, LoginRefused
from edge.clock import Clock
from edge.control import ApplyBatteryPower, ApplyMode, ApplyReserve, Capabilities, DeviceAction
from edge.model import (
    BATTERY,
    LOAD,
    SITE,
    SOC,
    SOLAR,
    DeviceState,
    GridStatus,
    OperationMode,
    Reading,
    Snapshot,
    Unit,
)

# ------------------------------------------------------------------ mapping (pure)

_METERS = (("site", SITE), ("battery", BATTERY), ("solar", SOLAR), ("load", LOAD))

GRID_STATUS = {
    "SystemGridConnected": GridStatus.CONNECTED,
    "SystemIslandedActive": GridStatus.ISLANDED,
    "SystemIslandedReady": GridStatus.ISLANDED,
    "SystemMicroGridFaulted": GridStatus.ISLANDED,
    "SystemTransitionToGrid": GridStatus.TRANSITIONING,
    "SystemTransitionToIsland": GridStatus.TRANSITIONING,
    "SystemWaitForUser": GridStatus.TRANSITIONING,
}

MODES = {"self_consumption": OperationMode.SELF_CONSUMPTION, "backup": OperationMode.BACKUP,
         "autonomous": OperationMode.AUTONOMOUS}


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadAnswer(f"{what} is {value!r}, not a number")
    return float(value)


def readings(aggregates: Any, soe: Any, grid: Any, at_ms: int) -> tuple[tuple[Reading, ...], GridStatus | None]:
    """The gateway's answers → readings (W, %, Hz, V) and the grid status."""
    if not isinstance(aggregates, Mapping):
        raise BadAnswer("meters/aggregates is not an object")
    out: list[Reading] = []
    for meter, signal in _METERS:
        section = aggregates.get(meter)
        if section is None:
            continue           # no such meter at this site: not reported
        if not isinstance(section, Mapping):
            raise BadAnswer(f"meters/aggregates {meter} is not an object")
        out.append(Reading(signal, _number(section.get("instant_power"), f"{meter}.instant_power"), Unit.WATT, at_ms))
    if not out:
        raise BadAnswer("meters/aggregates has none of site, battery, solar, load")
    site = aggregates.get("site") or {}
    if isinstance(site.get("frequency"), int | float) and site["frequency"] > 0:   # 0: not measured
        out.append(Reading("grid_frequency_hz", float(site["frequency"]), Unit.HERTZ, at_ms))
    if isinstance(site.get("instant_average_voltage"), int | float) and site["instant_average_voltage"] > 0:
        out.append(Reading("site_voltage_v", float(site["instant_average_voltage"]), Unit.VOLT, at_ms))
    if soe is not None:
        if not isinstance(soe, Mapping):
            raise BadAnswer("system_status/soe is not an object")
        out.append(Reading(SOC, _number(soe.get("percentage"), "soe.percentage"), Unit.PERCENT, at_ms))
    status = None
    if isinstance(grid, Mapping):
        status = GRID_STATUS.get(str(grid.get("grid_status")))
    return tuple(out), status


def device_state(operation: Any, system_status: Any, status: Any) -> DeviceState:
    operation = operation if isinstance(operation, Mapping) else {}
    system_status = system_status if isinstance(system_status, Mapping) else {}
    reserve = operation.get("backup_reserve_percent")
    energy = system_status.get("nominal_full_pack_energy")
    power = system_status.get("max_discharge_power")
    firmware = str(status.get("version", "")) if isinstance(status, Mapping) else ""
    return DeviceState(
        mode=MODES.get(str(operation.get("real_mode"))),
        backup_reserve_pct=float(reserve) if isinstance(reserve, int | float) else None,
        battery_nominal_energy_wh=float(energy) if isinstance(energy, int | float) and energy > 0 else None,
        battery_max_power_w=float(power) if isinstance(power, int | float) and power > 0 else None,
        firmware=firmware,
        config={"powerwall.firmware": firmware} if firmware else {},
    )


# ------------------------------------------------------------------ the adapter


class PowerwallAdapter(Adapter):
    kind = "powerwall"

    def __init__(self, name: str, clock: Clock, *, host: str, password: str, email: str = "", port: int = 443,
                 timeout_s: float = 5.0, verify_tls: bool = False, ca_file: str = "", control: bool = False) -> None:
        super().__init__(name, clock)
        self._base = f"https://{host}:{port}" if port != 443 else f"https://{host}"
        self._host = host
        self._password = password
        self._email = email
        self._timeout_s = timeout_s
        self._verify_tls = verify_tls
        self._ca_file = ca_file
        self._control = control
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._login_lock = asyncio.Lock()
        self._soc: float | None = None
        self._state = DeviceState()

    def describe(self) -> str:
        return f"the Powerwall at {self._host}"

    async def start(self) -> None:
        if self._session is None:
            self._session = http.session(self._timeout_s, verify_tls=self._verify_tls, ca_file=self._ca_file)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def read(self) -> Snapshot:
        aggregates, soe, grid = await asyncio.gather(
            self._get("/api/meters/aggregates"), self._get("/api/system_status/soe"),
            self._get("/api/system_status/grid_status"))
        at_ms = self.clock.now_ms()
        values, status = readings(aggregates, soe, grid, at_ms)
        self._soc = next((r.value for r in values if r.signal == SOC), None)
        return Snapshot(self.name, at_ms, values, status)

    # ------------------------------------------------------------ control

    @property
    def capabilities(self) -> Capabilities:
        if not self._control:
            return super().capabilities
        return Capabilities(self.describe(), frozenset(OperationMode), backup_reserve=True)

    async def device_state(self) -> DeviceState:
        operation, system_status, status = await asyncio.gather(
            self._get("/api/operation"), self._get("/api/system_status"), self._get("/api/status"))
        self._state = device_state(operation, system_status, status)
        return self._state

    def battery_limits(self) -> tuple[float | None, float | None]:
        return self._soc, self._state.battery_max_power_w

    async def apply(self, action: DeviceAction) -> str:
        if isinstance(action, ApplyBatteryPower):
            raise DeviceRefused(f"{self.describe()} takes no battery power setpoints")
        operation = await self._get("/api/operation")
        if not isinstance(operation, Mapping):
            raise BadAnswer("/api/operation is not an object")
        body = {"real_mode": operation.get("real_mode"),
                "backup_reserve_percent": operation.get("backup_reserve_percent")}
        if isinstance(action, ApplyMode):
            body["real_mode"] = action.mode.value
        elif isinstance(action, ApplyReserve):
            body["backup_reserve_percent"] = action.reserve_pct
        await self._request("POST", "/api/operation", json=body)
        await self._get("/api/config/completed")    # the gateway applies the change when told it is complete
        return f"{self.describe()}: mode {body['real_mode']}, backup reserve {body['backup_reserve_percent']} %"

    # ------------------------------------------------------------ HTTP

    async def _get(self, path: str) -> Any:
        return await self._request("GET", path)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in (1, 2):
            token = await self._login()
            assert self._session is not None
            async with http.translated(f"{self.describe()} {path}"), self._session.request(
                    method, self._base + path, headers={"Authorization": f"Bearer {token}"}, **kwargs) as response:
                if response.status in (401, 403) and attempt == 1:
                    self._token = None          # expired session: log in again, once
                    continue
                if response.status >= 400:
                    raise DeviceRefused(f"{self.describe()} answered {method} {path} with HTTP {response.status}: "
                                        f"{(await response.text())[:200]}")
                return await http.json_body(response, f"{self.describe()} {path}")
        raise LoginRefused(f"{self.describe()} refuses {path} even after logging in again")

    async def _login(self) -> str:
        async with self._login_lock:
            if self._token is not None:
                return self._token
            assert self._session is not None, "start() the adapter first"
            what = f"{self.describe()} login"
            async with http.translated(what), self._session.post(self._base + "/api/login/Basic", json={
                    "username": "customer", "email": self._email, "password": self._password,
                    "force_sm_off": False}) as response:
                if response.status in (401, 403, 429):
                    raise LoginRefused(f"{what} refused (HTTP {response.status}): check the gateway password")
                if response.status >= 400:
                    raise DeviceRefused(f"{what}: HTTP {response.status}")
                body = await http.json_body(response, what)
            token = body.get("token") if isinstance(body, Mapping) else None
            if not isinstance(token, str) or not token:
                raise BadAnswer(f"{what}: no token in the answer")
            self._token = token
            return token
