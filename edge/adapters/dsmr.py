"""Smart meters' P1 port (DSMR 2.2 to 5, and the Belgian, Luxembourg, Swedish, Irish, Hungarian and
EasyMeter variants dsmr_parser knows; not yet the encrypted ones), from a serial port (a USB P1
cable, `/dev/ttyUSB0`) or a TCP serial bridge (`host:port`, e.g. ser2net or an ESP P1 reader).
dsmr_parser frames the stream into telegrams, checks their CRC (DSMR 4 and later) and parses them;
this adapter maps them.

Signs and units: the meter counts what the grid delivers to the home (1.7.0, "usage") and what the
home delivers back (2.7.0, "delivery"), both ≥ 0, in kW on most meters and W on some (Sagemcom
T210-D, EasyMeter): site_power_w = usage − delivery, in W (> 0 imports). A meter without 2.7.0
(EasyMeter Q3D: 1.7.0 is the balance) gives site = 1.7.0. Per-phase powers (21/41/61.7.0 minus
22/42/62.7.0) and voltages become extras. The telegram's own clock (0-0:1.0.0) is not the sample
time: meters' clocks drift and older ones send none; a reading is stamped when it arrives.

Telegrams arrive every second (DSMR 5) or every ten (DSMR 4); the newest parsed one is the
reading. A telegram with a wrong CRC or that does not parse is dropped and counted; a lost
connection is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from dsmr_parser import telegram_specifications as specs
from dsmr_parser.clients import settings as serial_settings
from dsmr_parser.clients.telegram_buffer import TelegramBuffer
from dsmr_parser.exceptions import InvalidChecksumError, ParseError
from dsmr_parser.parsers import TelegramParser

from edge import units
from edge.adapters.base import BadAnswer, ChecksumError, NoReading, PushedAdapter, Unreachable
from edge.backoff import backoff_s
from edge.clock import Clock
from edge.model import SITE, Reading, Snapshot, Unit

log = logging.getLogger(__name__)

# dsmr_parser's version names → (telegram specification, serial settings)
VERSIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "2.2": (specs.V2_2, serial_settings.SERIAL_SETTINGS_V2_2),
    "3": (specs.V3, serial_settings.SERIAL_SETTINGS_V2_2),
    "4": (specs.V4, serial_settings.SERIAL_SETTINGS_V4),
    "4+": (specs.V5, serial_settings.SERIAL_SETTINGS_V4),
    "5": (specs.V5, serial_settings.SERIAL_SETTINGS_V5),
    "5B": (specs.BELGIUM_FLUVIUS, serial_settings.SERIAL_SETTINGS_V5),
    "5L": (specs.LUXEMBOURG_SMARTY, serial_settings.SERIAL_SETTINGS_V5),
    "5S": (specs.SWEDEN, serial_settings.SERIAL_SETTINGS_V5),
    "Q3D": (specs.Q3D, serial_settings.SERIAL_SETTINGS_V5),
    "ISKRA_IE": (specs.ISKRA_IE, serial_settings.SERIAL_SETTINGS_V5),
    "5EONHU": (specs.EON_HUNGARY, serial_settings.SERIAL_SETTINGS_V5),
}
# Not here: meters that encrypt their telegrams (Sagemcom T210-D-r in Austria, MSN): the agent takes
# no keys yet. Their decrypted telegrams are DSMR 5 (version "5").

_PHASES = (("l1", "INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE", "INSTANTANEOUS_ACTIVE_POWER_L1_NEGATIVE",
            "INSTANTANEOUS_VOLTAGE_L1"),
           ("l2", "INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE", "INSTANTANEOUS_ACTIVE_POWER_L2_NEGATIVE",
            "INSTANTANEOUS_VOLTAGE_L2"),
           ("l3", "INSTANTANEOUS_ACTIVE_POWER_L3_POSITIVE", "INSTANTANEOUS_ACTIVE_POWER_L3_NEGATIVE",
            "INSTANTANEOUS_VOLTAGE_L3"))


# ------------------------------------------------------------------ mapping (pure)


def _quantity(telegram: Any, name: str) -> tuple[Decimal, str] | None:
    item = getattr(telegram, name, None)
    value = getattr(item, "value", None)
    if not isinstance(value, Decimal | int | float):
        return None
    return Decimal(value), str(getattr(item, "unit", "") or "")


def _power_w(telegram: Any, name: str) -> float | None:
    found = _quantity(telegram, name)
    if found is None:
        return None
    value, unit = found
    try:
        return units.watts(value, unit or "kW")
    except units.UnitError as exc:
        raise BadAnswer(f"{name}: {exc}") from exc


def readings(telegram: Any, at_ms: int) -> tuple[Reading, ...]:
    """A parsed telegram (dsmr_parser's `Telegram`) → readings."""
    usage = _power_w(telegram, "CURRENT_ELECTRICITY_USAGE")
    delivery = _power_w(telegram, "CURRENT_ELECTRICITY_DELIVERY")
    if usage is None and delivery is None:
        raise BadAnswer("the telegram has neither 1.7.0 nor 2.7.0 (current power)")
    out = [Reading(SITE, (usage or 0.0) - (delivery or 0.0), Unit.WATT, at_ms)]
    for phase, positive, negative, voltage in _PHASES:
        plus, minus = _power_w(telegram, positive), _power_w(telegram, negative)
        if plus is not None or minus is not None:
            out.append(Reading(f"site_power_{phase}_w", (plus or 0.0) - (minus or 0.0), Unit.WATT, at_ms))
        volts = _quantity(telegram, voltage)
        if volts is not None:
            out.append(Reading(f"voltage_{phase}_v", float(volts[0]), Unit.VOLT, at_ms))
    return tuple(out)


def parser(version: str) -> TelegramParser:
    return TelegramParser(VERSIONS[version][0])


# ------------------------------------------------------------------ the adapter


class _TelegramProtocol(asyncio.Protocol):
    """Bytes → telegrams → the adapter's callbacks (no logic of its own)."""

    def __init__(self, on_telegram: Callable[[str], None], on_lost: Callable[[Exception | None], None]) -> None:
        self._buffer = TelegramBuffer()
        self._on_telegram = on_telegram
        self._on_lost = on_lost

    def data_received(self, data: bytes) -> None:
        self._buffer.append(data.decode("latin1"))
        for telegram in self._buffer.get_all():
            self._on_telegram(telegram)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)


class DsmrAdapter(PushedAdapter):
    kind = "dsmr"

    def __init__(self, name: str, clock: Clock, *, version: str, serial_port: str = "", tcp: str = "") -> None:
        super().__init__(name, clock)
        if version not in VERSIONS:
            raise ValueError(f"unknown DSMR version {version!r}")
        if bool(serial_port) == bool(tcp):
            raise ValueError("give either serial_port or tcp")
        self._version, self._serial_port, self._tcp = version, serial_port, tcp
        self._parser = parser(version)
        self._latest: Snapshot | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self.telegrams = 0

    def describe(self) -> str:
        return f"the P1 meter on {self._serial_port or self._tcp} (DSMR {self._version})"

    async def read(self) -> Snapshot:
        if self._latest is None:
            raise NoReading(f"{self.describe()}: no telegram yet")
        return self._latest

    def _on_telegram(self, text: str) -> None:
        try:
            telegram = self._parser.parse(text, throw_ex=True)
            snapshot = Snapshot(self.name, self.clock.now_ms(), readings(telegram, self.clock.now_ms()))
        except InvalidChecksumError as exc:
            self._errors.append(ChecksumError(f"{self.describe()}: {exc}"))
            return
        except (ParseError, UnicodeError, ValueError) as exc:
            self._errors.append(BadAnswer(f"{self.describe()}: telegram does not parse: {exc}"))
            return
        except BadAnswer as error:
            self._errors.append(error)
            return
        self.telegrams += 1
        self._latest = snapshot

    def _on_lost(self, exc: Exception | None) -> None:
        self._lost.set()

    async def _run(self) -> None:
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            self._lost.clear()
            try:
                transport = await self._open(loop)
            except (OSError, ValueError) as exc:
                self._errors.append(Unreachable(f"{self.describe()}: {exc}"))
                attempt += 1
                await asyncio.sleep(backoff_s(attempt, initial_s=1.0, maximum_s=30.0))
                continue
            attempt = 0
            try:
                await self._lost.wait()
            finally:
                transport.close()
            self._errors.append(Unreachable(f"{self.describe()}: connection lost"))
            await asyncio.sleep(1.0)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> asyncio.BaseTransport:
        def protocol() -> _TelegramProtocol:
            return _TelegramProtocol(self._on_telegram, self._on_lost)

        if self._tcp:
            host, _, port = self._tcp.rpartition(":")
            transport, _ = await loop.create_connection(protocol, host, int(port))
            return transport
        import serialx  # the serial transport dsmr_parser uses (only needed for a serial port)

        settings = {k: v for k, v in VERSIONS[self._version][1].items() if k != "timeout"}
        transport, _ = await serialx.create_serial_connection(loop, protocol, url=self._serial_port, **settings)
        return transport  # type: ignore[no-any-return]
