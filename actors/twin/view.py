"""A twin as apps and operators see it: typed, immutable values (standard library only). The shard
answers `view` with a `TwinView`; the gRPC edge (`actors/runtime/convert.py`) turns it into the
TwinService's messages. Times are Unix ms (0: none), powers W, None: not reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.twin.model import Alert
from actors.twin.stormwatch import StormWatchView
from actors.twin.vpp import VppView
from services.control.model import OperationMode


@dataclass(frozen=True)
class ReportedValue:
    value: float
    timestamp_unix_ms: int


@dataclass(frozen=True)
class ReportedView:
    """The newest applied sample (None: that sample did not report the signal) and what the
    device's newest StateReport says."""

    device_id: str = ""
    timestamp_unix_ms: int = 0
    site_power_w: float | None = None
    battery_power_w: float | None = None
    solar_power_w: float | None = None
    load_power_w: float | None = None
    state_of_charge_pct: float | None = None
    grid_status: int = 0                            # gridtwin.device.v1.GridStatus
    mode: OperationMode | None = None               # None: the device has not said
    last_reported: dict[str, ReportedValue] = field(default_factory=dict)   # every signal ever reported


@dataclass(frozen=True)
class DesiredView:
    """What the twin wants the device to run (revision 0: nothing yet) and what the device runs."""

    plan_id: str = ""                   # "<installation>:r<revision>"; "" when no plan is desired
    plan_source: str = ""               # "stormwatch", "vpp" or "vpp+stormwatch"
    active_action: str = ""             # "charge_to", "discharge", "hold"; "" when no step is active
    target_soc_pct: float = 0.0
    revision: int = 0
    issued_unix_ms: int = 0
    reported_plan_id: str = ""          # the plan the device's newest StateReport names
    state_reported_unix_ms: int = 0


@dataclass(frozen=True)
class EnergyView:
    anchor: str = "none"                # "full", "empty" or "none": where the integration starts
    anchor_unix_ms: int = 0
    net_out_wh: float = 0.0             # trapezoidal ∫ battery power since the anchor
    throughput_wh: float = 0.0


@dataclass(frozen=True)
class Counts:
    applied: int = 0
    ignored: int = 0                    # at or before the device's newest applied sample
    rejected: int = 0                   # implausible values


@dataclass(frozen=True)
class TwinView:
    installation_id: str
    version: int
    reported: ReportedView
    desired: DesiredView
    energy: EnergyView
    alerts: tuple[Alert, ...]           # open ones
    counts: Counts
    stormwatch: StormWatchView
    vpp: VppView
