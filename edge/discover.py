"""`gridtwin edge discover HOST`: what known devices answer at an address, and the configuration
that would read them.

Each probe asks the least a device of its family answers without credentials, with a short
timeout, all at once:

    powerwall  HTTPS GET /api/status (the gateway's DIN and firmware; no login needed)   443
    fronius    HTTP GET /solar_api/GetAPIVersion.cgi                                      80
    sunspec    Modbus TCP: "SunS" at 40000, 0 or 50000 for unit 1 or 126, then the models 502, 1502
    mqtt       an MQTT CONNECT, answered by CONNACK (accepted, or needing credentials)    1883
    dsmr       a TCP serial bridge: a P1 telegram within `p1_wait_s`                       2001, 8088, 23

A serial P1 cable is not probed (`ls /dev/serial/by-id/`); ports can be given per kind.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

DEFAULT_PORTS: dict[str, tuple[int, ...]] = {
    "powerwall": (443,), "fronius": (80,), "sunspec": (502, 1502), "mqtt": (1883,), "dsmr": (2001, 8088, 23)}


@dataclass(frozen=True)
class Found:
    kind: str
    port: int
    description: str
    config: str              # a [[sources]] entry to start from


Probe = Callable[[str, int, float], Awaitable[Found | None]]


async def discover(host: str, *, ports: Mapping[str, tuple[int, ...]] | None = None, timeout_s: float = 2.0,
                   p1_wait_s: float = 3.0) -> list[Found]:
    ports = {**DEFAULT_PORTS, **(ports or {})}
    probes: dict[str, Probe] = {
        "powerwall": _powerwall, "fronius": _fronius, "sunspec": _sunspec, "mqtt": _mqtt,
        "dsmr": lambda h, p, t: _p1(h, p, max(t, p1_wait_s))}
    calls = [probes[kind](host, port, timeout_s) for kind, kind_ports in ports.items() if kind in probes
             for port in kind_ports]
    results = await asyncio.gather(*calls, return_exceptions=True)
    return [r for r in results if isinstance(r, Found)]


async def _http_json(url: str, timeout_s: float) -> object | None:
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session, \
                session.get(url, ssl=False) as response:
            if response.status != 200:
                return None
            return json.loads(await response.text())
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
        return None


async def _powerwall(host: str, port: int, timeout_s: float) -> Found | None:
    status = await _http_json(f"https://{host}:{port}/api/status", timeout_s)
    if not isinstance(status, dict) or "din" not in status:
        return None
    config = (f'[[sources]]\nname = "powerwall"\nkind = "powerwall"\nhost = "{host}"\n'
              + (f"port = {port}\n" if port != 443 else "")
              + 'password_file = "/etc/gridtwin-edge/powerwall.password"   # the gateway password\ncontrol = true\n')
    return Found("powerwall", port, f"Tesla Powerwall gateway {status.get('din')} (firmware {status.get('version')})",
                 config)


async def _fronius(host: str, port: int, timeout_s: float) -> Found | None:
    version = await _http_json(f"http://{host}:{port}/solar_api/GetAPIVersion.cgi", timeout_s)
    if not isinstance(version, dict) or "APIVersion" not in version:
        return None
    return Found("fronius", port, f"Fronius Solar API v{version['APIVersion']} ({version.get('BaseURL', '')})",
                 f'[[sources]]\nname = "fronius"\nkind = "fronius"\nurl = "http://{host}:{port}"\n')


async def _sunspec(host: str, port: int, timeout_s: float) -> Found | None:
    from edge.adapters.base import SourceError
    from edge.adapters.sunspec import SunSpecAdapter
    from edge.clock import Clock

    for unit in (1, 126):
        adapter = SunSpecAdapter("probe", Clock(), host=host, port=port, unit_id=unit, timeout_s=timeout_s)
        try:
            models, common = await adapter.identify()
        except SourceError:
            continue
        finally:
            await adapter.stop()
        name = " ".join(str(common.get(k) or "") for k in ("Mn", "Md")).strip() or "SunSpec device"
        storage = "; storage controls (model 124)" if 124 in models else ""
        config = (f'[[sources]]\nname = "sunspec"\nkind = "sunspec"\nhost = "{host}"\nport = {port}\n'
                  f"unit_id = {unit}\n" + ("control = true\n" if storage else ""))
        return Found("sunspec", port, f"{name} (serial {common.get('SN') or '?'}), unit {unit}, models "
                     f"{', '.join(map(str, sorted(models)))}{storage}", config)
    return None


# MQTT 3.1.1 CONNECT, clean session, keepalive 10 s, client id "gridtwin-discover"
_CONNECT = (bytes([0x10, 0x1D, 0x00, 0x04]) + b"MQTT" + bytes([0x04, 0x02, 0x00, 0x0A, 0x00, 0x11])
            + b"gridtwin-discover")


async def _mqtt(host: str, port: int, timeout_s: float) -> Found | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(_CONNECT)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readexactly(4), timeout_s)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        writer.close()
    if answer[0] != 0x20:
        return None
    needs = " (needs a user name and password)" if answer[3] in (4, 5) else ""
    return Found("mqtt", port, f"MQTT broker{needs}",
                 f'[[sources]]\nname = "mqtt"\nkind = "mqtt"\nhost = "{host}"\nport = {port}\n'
                 '[sources.topics."your/topic/grid_power"]\nsignal = "site_power_w"\nunit = "W"\n')


def guess_dsmr_version(telegram: str) -> str:
    """A starting point for the `version` setting from what a telegram looks like."""
    header = telegram.lstrip().splitlines()[0] if telegram.strip() else ""
    if "FLU" in header:
        return "5B"
    if "ESY" in header:
        return "Q3D"
    has_crc = bool(re.search(r"![0-9A-F]{3,4}\r\n", telegram))
    if not has_crc:
        return "2.2"
    return "5" if "1-3:0.2.8(5" in telegram else "4"


async def _p1(host: str, port: int, wait_s: float) -> Found | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), min(wait_s, 2.0))
    except (OSError, TimeoutError):
        return None
    data = b""
    try:
        async with asyncio.timeout(wait_s):
            while b"!" not in data or not data.rstrip(b"\0").endswith(b"\r\n"):
                chunk = await reader.read(4_096)
                if not chunk:
                    break
                data += chunk
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()
    text = data.decode("latin1")
    start = text.find("/")
    if start < 0 or "!" not in text[start:]:
        return None
    telegram = text[start:]
    header = telegram.splitlines()[0]
    version = guess_dsmr_version(telegram)
    return Found("dsmr", port, f"P1 telegrams from {header} (DSMR {version}?)",
                 f'[[sources]]\nname = "p1"\nkind = "dsmr"\ntcp = "{host}:{port}"\nversion = "{version}"\n')

