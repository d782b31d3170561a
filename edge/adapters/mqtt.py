"""MQTT topics, mapped to signals by the configuration (aiomqtt), so that a Home Assistant, a Venus
OS (Victron) or any other installation that publishes its meters can feed the agent.

Each configured topic names the signal it carries, its unit and how to read it:

    [sources.topics."venus/N/abc/system/0/Ac/Grid/L1/Power"]
    signal = "site_power_w"      # one of the five signals, or an extra's name with its unit
    unit = "W"                   # W, kW, %, ratio, Hz, V, A, °C (converted to W and %)
    json_key = "value"           # the payload is JSON; take this key (dotted for nested), else a bare number
    sign = "invert"              # when the publisher's convention is the opposite of the protocol's

The newest value of each topic is the reading, stamped when it arrived; a topic that stops
publishing goes stale like any source. Topics mapped to the same signal are added (the three
phases of a grid meter), stamped with the oldest of them, and only once each has published.
A payload that is not a number is dropped and counted; a lost broker is reconnected with backoff
and the subscriptions renewed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiomqtt

from edge import units
from edge.adapters.base import BadAnswer, NoReading, PushedAdapter, Unreachable
from edge.backoff import backoff_s
from edge.clock import Clock
from edge.model import BATTERY, LOAD, SIGNALS, SITE, SOC, SOLAR, Reading, Snapshot, Unit

log = logging.getLogger(__name__)

_POWER_UNITS = ("w", "kw", "mw")
_OTHER_UNITS = {"hz": Unit.HERTZ, "v": Unit.VOLT, "a": Unit.AMPERE, "°c": Unit.CELSIUS, "c": Unit.CELSIUS,
                "wh": Unit.WATT_HOUR, "kwh": Unit.WATT_HOUR}


@dataclass(frozen=True)
class TopicMapping:
    signal: str
    unit: str = "W"
    json_key: str = ""
    invert: bool = False


# ------------------------------------------------------------------ mapping (pure)


def parse_payload(payload: bytes | str, json_key: str) -> float:
    """A bare number (`1234.5`), or the number under `json_key` in a JSON object."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    try:
        value: Any = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadAnswer(f"not a number or JSON: {text[:60]!r}") from exc
    if json_key:
        for key in json_key.split("."):
            if not isinstance(value, Mapping) or key not in value:
                raise BadAnswer(f"no {json_key!r} in {text[:60]!r}")
            value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadAnswer(f"{value!r} is not a finite number")
    return float(value)


def reading(mapping: TopicMapping, payload: bytes | str, at_ms: int) -> Reading:
    value = parse_payload(payload, mapping.json_key)
    if mapping.invert:
        value = -value
    unit = mapping.unit.strip().lower()
    try:
        if unit in _POWER_UNITS:
            return Reading(mapping.signal, units.watts(value, unit), Unit.WATT, at_ms)
        if unit in ("%", "pct", "ratio"):
            return Reading(mapping.signal, units.percent(value, unit), Unit.PERCENT, at_ms)
        if unit in ("kwh",):
            return Reading(mapping.signal, units.watt_hours(value, unit), Unit.WATT_HOUR, at_ms)
    except units.UnitError as exc:
        raise BadAnswer(str(exc)) from exc
    if unit in _OTHER_UNITS:
        return Reading(mapping.signal, value, _OTHER_UNITS[unit], at_ms)
    raise BadAnswer(f"unknown unit {mapping.unit!r}")


def summed(topics: Mapping[str, TopicMapping], latest: Mapping[str, Reading]) -> tuple[Reading, ...]:
    """One reading per signal: the sum of its topics' newest readings, once every one of them has
    published, stamped with the oldest."""
    by_signal: dict[str, list[str]] = {}
    for topic, mapping in topics.items():
        by_signal.setdefault(mapping.signal, []).append(topic)
    out = []
    for signal, names in by_signal.items():
        parts = [latest[t] for t in names if t in latest]
        if parts and len(parts) == len(names):
            out.append(Reading(signal, sum(r.value for r in parts), parts[0].unit, min(r.at_ms for r in parts)))
    return tuple(out)


def unit_fits(signal: str, unit: str) -> bool:
    """Whether `unit` can carry `signal` (the configuration checks every topic with it)."""
    kind = unit.strip().lower()
    if signal in (SITE, BATTERY, SOLAR, LOAD):
        return kind in _POWER_UNITS
    if signal == SOC:
        return kind in ("%", "pct", "ratio")
    return signal not in SIGNALS and (kind in _POWER_UNITS or kind in _OTHER_UNITS or kind in ("%", "pct", "ratio"))


# ------------------------------------------------------------------ the adapter


class MqttAdapter(PushedAdapter):
    kind = "mqtt"

    def __init__(self, name: str, clock: Clock, *, host: str, topics: Mapping[str, TopicMapping], port: int = 1883,
                 username: str = "", password: str = "", client_id: str = "") -> None:
        super().__init__(name, clock)
        self._host, self._port = host, port
        self._username, self._password, self._client_id = username or None, password or None, client_id or None
        self._topics = dict(topics)
        self._latest: dict[str, Reading] = {}      # by topic
        self.subscribed = asyncio.Event()
        self.messages = 0

    def describe(self) -> str:
        return f"the MQTT broker at {self._host}:{self._port}"

    async def read(self) -> Snapshot:
        if not self._latest:
            raise NoReading(f"{self.describe()}: nothing received on {len(self._topics)} topics yet")
        return Snapshot(self.name, max(r.at_ms for r in self._latest.values()), summed(self._topics, self._latest))

    def _on_message(self, topic: str, payload: Any) -> None:
        mapping = self._topics.get(topic)
        if mapping is None:
            return
        try:
            self._latest[topic] = reading(mapping, payload if isinstance(payload, bytes | str) else str(payload),
                                          self.clock.now_ms())
            self.messages += 1
        except BadAnswer as error:
            self._errors.append(BadAnswer(f"{self.describe()} {topic}: {error}"))

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                async with aiomqtt.Client(self._host, self._port, username=self._username, password=self._password,
                                          identifier=self._client_id, timeout=10) as client:
                    for topic in self._topics:
                        await client.subscribe(topic, qos=0)
                    self.subscribed.set()
                    attempt = 0
                    async for message in client.messages:
                        self._on_message(str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                self._errors.append(Unreachable(f"{self.describe()}: {exc}"))
            attempt += 1
            await asyncio.sleep(backoff_s(attempt, initial_s=1.0, maximum_s=30.0))
