"""Fake home devices for the edge agent's tests and benchmark, serving the real recorded answers in
../shared/data: a Powerwall gateway (HTTPS, login, operation changes), a Fronius datalogger, a
SunSpec inverter with storage on pymodbus's simulated Modbus server, a P1 meter writing recorded
telegrams to a pseudo-terminal, and a real Mosquitto broker. Each can be told to misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import tty
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.adapters import sunspec
from tests.data import SHARED_DATA

PW = SHARED_DATA / "powerwall"
FR = SHARED_DATA / "fronius"
P1 = SHARED_DATA / "dsmr"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


class _Http:
    """An aiohttp app on 127.0.0.1 (HTTPS with a throwaway certificate when `tls`)."""

    def __init__(self, *, tls: bool = False) -> None:
        self.app = web.Application()
        self.faults: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self._tls = tls
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()     # set on stop: a "slow" answer never holds the shutdown
        self.port = 0

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if "slow" in self.faults:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), 30)
        if "bad_json" in self.faults and request.method == "GET":
            return web.Response(text='{"site": {"instant_power": 27,', content_type="application/json")
        response: web.StreamResponse = await handler(request)
        return response

    async def start(self) -> int:
        self.app.middlewares.append(self._faults)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        context = None
        if self._tls:
            import trustme

            ca = trustme.CA()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()


class FakePowerwall(_Http):
    """/api/login/Basic, meters/aggregates, system_status/soe, grid_status, operation (GET and POST),
    config/completed, system_status, status — the recorded answers, behind a login."""

    def __init__(self, password: str = "gateway-secret") -> None:
        super().__init__(tls=True)
        self.password = password
        self.tokens: set[str] = set()
        self.logins = 0
        self.operation = _json(PW / "pypowerwall__proxy_web_bogus_api.operation.json")
        self.committed = 0
        self.answers = {
            "/api/meters/aggregates": _json(PW / "pypowerwall__proxy_web_bogus_api.meters.aggregates.json"),
            "/api/system_status/soe": _json(PW / "pypowerwall__proxy_web_bogus_api.system_status.soe.json"),
            "/api/system_status/grid_status": _json(
                PW / "pypowerwall__proxy_web_bogus_api.system_status.grid_status.json"),
            "/api/system_status": _json(PW / "pypowerwall__proxy_web_bogus_api.system_status.json"),
            "/api/status": _json(PW / "pypowerwall__proxy_web_bogus_api.status.json"),
        }
        self.app.router.add_post("/api/login/Basic", self._login)
        self.app.router.add_get("/api/operation", self._get_operation)
        self.app.router.add_post("/api/operation", self._set_operation)
        self.app.router.add_get("/api/config/completed", self._completed)
        for path in self.answers:
            self.app.router.add_get(path, self._answer)

    async def _login(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "login_refused" in self.faults or body.get("password") != self.password:
            return web.json_response({"code": 401, "error": "bad credentials", "message": "Login Error"}, status=401)
        self.logins += 1
        token = f"token-{self.logins}"
        self.tokens.add(token)
        response = web.json_response({"email": body.get("email"), "firstname": "Tesla", "token": token})
        response.set_cookie("AuthCookie", token)
        return response

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "").removeprefix("Bearer ") in self.tokens

    async def _answer(self, request: web.Request) -> web.Response:
        if not self._authorized(request) and request.path != "/api/status":   # the status is public
            return web.json_response({"code": 401, "error": "bad token"}, status=401)
        return web.json_response(self.answers[request.path])

    async def _get_operation(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"code": 401}, status=401)
        return web.json_response(self.operation)

    async def _set_operation(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"code": 401}, status=401)
        if "read_only" in self.faults:
            return web.json_response({"code": 403, "error": "User does not have adequate access rights"}, status=403)
        body = await request.json()
        if body.get("real_mode") not in ("self_consumption", "backup", "autonomous"):
            return web.json_response({"code": 400, "error": "bad mode"}, status=400)
        self.operation.update(real_mode=body["real_mode"], backup_reserve_percent=body["backup_reserve_percent"])
        return web.json_response(self.operation)

    async def _completed(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"code": 401}, status=401)
        self.committed += 1
        return web.json_response({}, status=202)


FRONIUS_FILES = {
    "/solar_api/GetAPIVersion.cgi": FR / "pyfronius__v1_solar_api_GetAPIVersion.cgi.json",
    "/solar_api/v1/GetPowerFlowRealtimeData.fcgi":
        FR / "ha_core__fronius_fixtures_gen24_storage_GetPowerFlowRealtimeData.json",
    "/solar_api/v1/GetStorageRealtimeData.cgi":
        FR / "ha_core__fronius_fixtures_gen24_storage_GetStorageRealtimeData.json",
    "/solar_api/v1/GetMeterRealtimeData.cgi":
        FR / "pyfronius__v1_solar_api_v1_GetMeterRealtimeData.cgi___Scope-System.json",
}


class FakeFronius(_Http):
    """The Solar API v1 answers of a Gen24 with a BYD battery (recorded)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers = {path: _json(file) for path, file in FRONIUS_FILES.items()}
        for path in self.answers:
            self.app.router.add_get(path, self._answer)

    async def _answer(self, request: web.Request) -> web.Response:
        return web.json_response(self.answers[request.path])


# ------------------------------------------------------------------ SunSpec on pymodbus


def sf(value: int) -> int:
    return value & 0xFFFF


SUNSPEC_MODELS: dict[int, dict[str, Any]] = {
    1: {"Mn": "gridtwin", "Md": "Sim Hybrid 5", "SN": "SIM-0001", "Vr": "1.2.3", "DA": 1},
    103: {"W": 31_250, "W_SF": sf(-1), "Hz": 4_998, "Hz_SF": sf(-2), "A_SF": 0, "V_SF": 0},   # 3,125.0 W
    203: {"W": sf(-850), "W_SF": 0, "Hz": 5_001, "Hz_SF": sf(-2)},                          # exporting 850 W
    124: {"WChaMax": 5_000, "WChaMax_SF": 0, "MinRsvPct": 200, "MinRsvPct_SF": sf(-1), "ChaState": 655,
          "ChaState_SF": sf(-1), "StorCtl_Mod": 0, "InOutWRte_SF": sf(-2), "OutWRte": 0, "InWRte": 0,
          "ChaGriSet": 0, "InOutWRte_RvrtTms": 0},
    802: {"W": sf(-1_500), "W_SF": 0, "SoC": 655, "SoC_SF": sf(-1), "WHRtg": 10_000, "WHRtg_SF": 0},
}
SUNSPEC_BASE = 40_000


def sunspec_registers(models: dict[int, dict[str, Any]] = SUNSPEC_MODELS) -> tuple[list[int], dict[int, int]]:
    """The whole map ("SunS", the models, the end marker) and each model's address."""
    registers = [0x5375, 0x6E53]
    addresses = {}
    for model_id, values in models.items():
        addresses[model_id] = SUNSPEC_BASE + len(registers)
        registers += sunspec.encode(model_id, values)
    return registers + [0xFFFF, 0], addresses


class FakeSunSpec:
    """pymodbus's simulated Modbus TCP server holding a SunSpec map (unit 1). Writes land in the
    server's registers (and `writes`); `faults`: "exception" answers every request with a Modbus
    exception (device busy), "silent" never answers."""

    def __init__(self, models: dict[int, dict[str, Any]] = SUNSPEC_MODELS) -> None:
        from pymodbus.constants import ExcCodes
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        self._busy = ExcCodes.DEVICE_BUSY
        registers, self.addresses = sunspec_registers(models)
        self.registers = list(registers)          # a mirror of what the server holds
        self.faults: set[str] = set()
        self.writes: list[tuple[int, list[int]]] = []
        self.port = free_port()
        device = SimDevice(id=1, simdata=[SimData(address=SUNSPEC_BASE, values=registers,
                                                  datatype=DataType.REGISTERS)], action=self._action)
        self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        self._task: asyncio.Task[None] | None = None

    async def _action(self, function_code: int, start: int, address: int, count: int, current: list[int],
                      set_values: Any) -> Any:
        if "silent" in self.faults:
            await asyncio.sleep(30)
        if "exception" in self.faults:
            return self._busy
        if set_values is not None:
            self.writes.append((address, list(set_values)))
            offset = address - SUNSPEC_BASE
            self.registers[offset:offset + len(set_values)] = list(set_values)
        return None

    def point(self, model_id: int, name: str) -> Any:
        start = self.addresses[model_id] - SUNSPEC_BASE
        length = self.registers[start + 1] + 2
        return sunspec.decode(model_id, self.registers[start:start + length])[name]

    async def start(self) -> int:
        self._task = asyncio.create_task(self._server.serve_forever())
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                return self.port
            await asyncio.sleep(0.05)
        raise RuntimeError("the Modbus server did not start")

    async def stop(self) -> None:
        await self._server.shutdown()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# ------------------------------------------------------------------ a P1 meter on a pseudo-terminal


def p1_telegram(name: str = "V5") -> bytes:
    return (P1 / f"dsmr_parser__TELEGRAM_{name}.txt").read_bytes()


class PtyMeter:
    """Writes a recorded telegram to a pseudo-terminal every `interval_s`, as a P1 port does; the
    agent opens `path` as its serial port. `corrupt` telegrams go out with one digit changed (the
    CRC no longer matches)."""

    def __init__(self, telegram: bytes = p1_telegram(), interval_s: float = 0.2) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        os.set_blocking(self.master, False)     # nobody reading: telegrams are lost, the loop never blocks
        self.path = os.ttyname(self.slave)
        self.telegram = telegram
        self.interval_s = interval_s
        self.corrupt = 0
        self.written = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        self._task = asyncio.create_task(self._write_forever())
        return self.path

    async def _write_forever(self) -> None:
        while True:
            data = self.telegram
            if self.corrupt:
                self.corrupt -= 1
                data = data.replace(b"(00.244*kW)", b"(00.245*kW)")
            with contextlib.suppress(BlockingIOError):
                os.write(self.master, data)
                self.written += 1
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


# ------------------------------------------------------------------ Mosquitto


class Mosquitto:
    """A real Mosquitto broker (the Debian package) on a free loopback port, as a child process."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="gridtwin-mosquitto-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed (scripts/bootstrap.sh installs the Debian package)")
        config = self._dir / "mosquitto.conf"
        config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                          "log_dest stderr\nuser root\n")
        self._process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                                         stderr=open(self._dir / "mosquitto.log", "wb"))  # noqa: SIM115
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self.port
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self._dir / 'mosquitto.log').read_text()}")
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
            if self._process.poll() is None:
                self._process.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


async def publish(port: int, topic: str, payload: str | bytes) -> None:
    import aiomqtt

    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(topic, payload, qos=1, retain=True)
