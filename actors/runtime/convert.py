"""Twin values ↔ protobuf messages of gridtwin.twins.v1 (the edge of the pure model)."""

from __future__ import annotations

import json
from typing import Any

from actors.twin.model import Alert, AlertState, Severity
from gridtwin.api.twins.v1 import twin_service_pb2 as pb

_STATES = {AlertState.RAISED: pb.ALERT_STATE_RAISED, AlertState.ONGOING: pb.ALERT_STATE_ONGOING,
           AlertState.CLEARED: pb.ALERT_STATE_CLEARED}
STATE_NAMES = {v: k for k, v in _STATES.items()}
_SEVERITY_BY_NAME = {s.name.lower(): s for s in Severity}


def alert_to_pb(a: Alert) -> pb.Alert:
    return pb.Alert(
        alert_id=a.alert_id, installation_id=a.installation_id, rule=a.rule.value,
        severity=int(a.severity), state=_STATES[a.state],  # type: ignore[arg-type]
        first_seen_unix_ms=a.first_seen_ms, last_seen_unix_ms=a.last_seen_ms, cleared_unix_ms=a.cleared_ms or 0,
        samples=a.samples, details_json=json.dumps(a.details, sort_keys=True),
    )


def alert_dict_to_pb(d: dict[str, Any]) -> pb.Alert:
    return pb.Alert(
        alert_id=d["alert_id"], installation_id=d["installation_id"], rule=d["rule"],
        severity=int(_SEVERITY_BY_NAME[d["severity"]]), state=_STATES[AlertState(d["state"])],  # type: ignore[arg-type]
        first_seen_unix_ms=d["first_seen_ms"], last_seen_unix_ms=d["last_seen_ms"],
        cleared_unix_ms=d["cleared_ms"] or 0, samples=d["samples"],
        details_json=json.dumps(d["details"], sort_keys=True),
    )


_SIGNALS = ("site_power_w", "battery_power_w", "solar_power_w", "load_power_w", "state_of_charge_pct")


def reported_to_pb(r: dict[str, Any]) -> pb.ReportedState:
    """A signal the newest sample did not report (None) stays unset, never 0."""
    return pb.ReportedState(
        device_id=r["device_id"], timestamp_unix_ms=r["timestamp_unix_ms"], grid_status=r["grid_status"],
        mode=r["mode"], **{name: r[name] for name in _SIGNALS if r[name] is not None},
        last_reported={name: pb.ReportedValue(value=v["value"], timestamp_unix_ms=v["timestamp_unix_ms"])
                       for name, v in r.get("last_reported", {}).items()})


def twin_to_pb(view: dict[str, Any]) -> pb.Twin:
    r, d, e, c = view["reported"], view["desired"], view["energy"], view["counts"]
    return pb.Twin(
        installation_id=view["installation_id"], version=view["version"],
        reported=reported_to_pb(r),
        desired=pb.DesiredState(plan_id=d["plan_id"], plan_source=d["plan_source"], active_action=d["active_action"],
                                target_state_of_charge_pct=d["target_soc_pct"], revision=d["revision"],
                                issued_unix_ms=d["issued_unix_ms"], reported_plan_id=d["reported_plan_id"],
                                state_reported_unix_ms=d["state_reported_unix_ms"]),
        energy=pb.BatteryEnergy(anchor=e["anchor"], anchor_unix_ms=e["anchor_unix_ms"], net_out_wh=e["net_out_wh"],
                                throughput_wh=e["throughput_wh"]),
        open_alerts=[alert_dict_to_pb(a) for a in view["alerts"]],
        samples_applied=c["applied"], samples_ignored=c["ignored"], samples_rejected=c["rejected"],
        vpp_event_id=view["vpp"]["event_id"], stormwatch=pb.StormWatch(**view["stormwatch"]),
        vpp=pb.VppParticipation(**view["vpp"]),
    )
