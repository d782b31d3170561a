"""Twin values ↔ protobuf messages of gridtwin.twins.v1 (the edge of the pure model)."""

from __future__ import annotations

import json

from actors.twin import stormwatch as sw
from actors.twin.model import SIGNALS, Alert, AlertState
from actors.twin.view import ReportedView, TwinView
from gridtwin.api.device.v1 import device_pb2 as dpb
from gridtwin.api.twins.v1 import twin_service_pb2 as pb
from services.control.convert import MODES

_STATES = {AlertState.RAISED: pb.ALERT_STATE_RAISED, AlertState.ONGOING: pb.ALERT_STATE_ONGOING,
           AlertState.CLEARED: pb.ALERT_STATE_CLEARED}
STATE_NAMES = {v: k for k, v in _STATES.items()}


def alert_to_pb(a: Alert) -> pb.Alert:
    return pb.Alert(
        alert_id=a.alert_id, installation_id=a.installation_id, rule=a.rule.value,
        severity=int(a.severity), state=_STATES[a.state],  # type: ignore[arg-type]
        first_seen_unix_ms=a.first_seen_ms, last_seen_unix_ms=a.last_seen_ms, cleared_unix_ms=a.cleared_ms or 0,
        samples=a.samples, details_json=json.dumps(a.details, sort_keys=True),
    )


def reported_to_pb(r: ReportedView) -> pb.ReportedState:
    """A signal the newest sample did not report (None) stays unset, never 0."""
    signals = {name: getattr(r, name) for name in SIGNALS if getattr(r, name) is not None}
    return pb.ReportedState(
        device_id=r.device_id, timestamp_unix_ms=r.timestamp_unix_ms, grid_status=r.grid_status,  # type: ignore[arg-type]
        mode=MODES[r.mode] if r.mode is not None else dpb.OPERATION_MODE_UNSPECIFIED, **signals,
        last_reported={name: pb.ReportedValue(value=v.value, timestamp_unix_ms=v.timestamp_unix_ms)
                       for name, v in r.last_reported.items()})


def twin_to_pb(view: TwinView) -> pb.Twin:
    d, e, c, v = view.desired, view.energy, view.counts, view.vpp
    return pb.Twin(
        installation_id=view.installation_id, version=view.version,
        reported=reported_to_pb(view.reported),
        desired=pb.DesiredState(plan_id=d.plan_id, plan_source=d.plan_source, active_action=d.active_action,
                                target_state_of_charge_pct=d.target_soc_pct, revision=d.revision,
                                issued_unix_ms=d.issued_unix_ms, reported_plan_id=d.reported_plan_id,
                                state_reported_unix_ms=d.state_reported_unix_ms),
        energy=pb.BatteryEnergy(anchor=e.anchor, anchor_unix_ms=e.anchor_unix_ms, net_out_wh=e.net_out_wh,
                                throughput_wh=e.throughput_wh),
        open_alerts=[alert_to_pb(a) for a in view.alerts],
        samples_applied=c.applied, samples_ignored=c.ignored, samples_rejected=c.rejected,
        vpp_event_id=v.event_id, stormwatch=pb.StormWatch(**sw.view_to_dict(view.stormwatch)),
        vpp=pb.VppParticipation(event_id=v.event_id, status=v.status, start_unix_ms=v.start_unix_ms,
                                end_unix_ms=v.end_unix_ms, power_w=v.power_w, program=v.program, reason=v.reason),
    )
