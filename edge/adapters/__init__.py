"""One adapter per device family (base.py has the interface). `build` makes the adapter a source's
configuration asks for, importing only that family's library: an agent with a P1 meter and a
Fronius never loads pymodbus or aiomqtt."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.adapters.base import Adapter

if TYPE_CHECKING:
    from edge.clock import Clock
    from edge.config import Source


def build(source: Source, clock: Clock) -> Adapter:
    if source.kind == "powerwall":
        from edge.adapters.powerwall import PowerwallAdapter

        return PowerwallAdapter(source.name, clock, host=source.host, port=source.port, password=source.secret(),
                                email=source.email, timeout_s=source.timeout_s, verify_tls=source.verify_tls,
                                ca_file=source.ca_file, control=source.control)
    if source.kind == "fronius":
        from edge.adapters.fronius import FroniusAdapter

        return FroniusAdapter(source.name, clock, url=source.url, timeout_s=source.timeout_s,
                              detail_interval_s=source.detail_interval_s)
    if source.kind == "sunspec":
        from edge.adapters.sunspec import SunSpecAdapter

        return SunSpecAdapter(source.name, clock, host=source.host, port=source.port, unit_id=source.unit_id,
                              base_address=source.base_address, timeout_s=source.timeout_s,
                              meter_sign=source.meter_sign, battery_sign=source.battery_sign,
                              control=source.control, revert_s=source.revert_s)
    if source.kind == "dsmr":
        from edge.adapters.dsmr import DsmrAdapter

        return DsmrAdapter(source.name, clock, version=source.version, serial_port=source.serial_port, tcp=source.tcp)
    if source.kind == "mqtt":
        from edge.adapters.mqtt import MqttAdapter, TopicMapping

        topics = {t: TopicMapping(m.signal, m.unit, m.json_key, m.sign == "invert") for t, m in source.topics.items()}
        return MqttAdapter(source.name, clock, host=source.host, port=source.port, username=source.username,
                           password=source.password, client_id=source.client_id, topics=topics)
    raise ValueError(f"unknown source kind {source.kind!r}")
