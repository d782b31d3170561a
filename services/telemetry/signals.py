"""The five measured signals of a device `Sample`, with their presence.

The device protocol's signals are proto3 `optional` fields: an unset one means "not reported"
(the device has no such meter), never 0. Everything downstream of the gateway carries that as
None (SQL NULL in the store, NaN in numpy columns). This is the one place that reads presence
from a protobuf Sample.

Reading presence costs a `HasField` call (~0.2 µs). An unset field reads 0.0, so a non-zero
value is known to be set and only a zero needs the call: a full sample with no exact zeros
costs five attribute reads, as before.
"""

from __future__ import annotations

from gridtwin.api.device.v1 import device_pb2 as pb
from services.telemetry.energy import POWER_FIELDS

SIGNALS: tuple[str, ...] = POWER_FIELDS   # site, battery, solar, load (W), state of charge (%)

Values = tuple[float | None, float | None, float | None, float | None, float | None]


def values(s: pb.Sample) -> Values:
    """(site, battery, solar, load, state of charge) of `s`; None where not reported."""
    site, battery, solar, load, soc = (s.site_power_w, s.battery_power_w, s.solar_power_w, s.load_power_w,
                                       s.state_of_charge_pct)
    return (
        None if site == 0.0 and not s.HasField("site_power_w") else site,
        None if battery == 0.0 and not s.HasField("battery_power_w") else battery,
        None if solar == 0.0 and not s.HasField("solar_power_w") else solar,
        None if load == 0.0 and not s.HasField("load_power_w") else load,
        None if soc == 0.0 and not s.HasField("state_of_charge_pct") else soc,
    )


def reports_any(s: pb.Sample) -> bool:
    """Whether `s` reports at least one of the five signals."""
    if s.site_power_w or s.battery_power_w or s.solar_power_w or s.load_power_w or s.state_of_charge_pct:
        return True   # a non-zero value (NaN included) is set
    return any(s.HasField(name) for name in SIGNALS)
