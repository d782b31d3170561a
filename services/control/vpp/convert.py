"""Converters at the edge of the VPP: `vpp.proto` messages ↔ the domain values of `model.py`,
`dispatch.py`, `contribution.py` and `report.py`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gridtwin.api.control.v1 import vpp_pb2 as pb
from gridtwin.unixtime import from_ms, to_ms
from services.control.vpp.contribution import ContributionSnapshot
from services.control.vpp.dispatch import GridEvent
from services.control.vpp.model import DEFAULT_PRECHARGE_S, EventState, GridEventSpec, InvalidEvent
from services.control.vpp.report import Settlement

EVENT_STATES = {EventState.SCHEDULED: pb.EVENT_STATE_SCHEDULED, EventState.ACTIVE: pb.EVENT_STATE_ACTIVE,
                EventState.COMPLETED: pb.EVENT_STATE_COMPLETED, EventState.CANCELLED: pb.EVENT_STATE_CANCELLED}
PARTICIPANT_STATUSES = {"dispatched": pb.PARTICIPANT_STATUS_DISPATCHED, "accepted": pb.PARTICIPANT_STATUS_ACCEPTED,
                        "declined": pb.PARTICIPANT_STATUS_DECLINED, "opted_out": pb.PARTICIPANT_STATUS_OPTED_OUT,
                        "cancelled": pb.PARTICIPANT_STATUS_CANCELLED}
# Beyond these a millisecond count is no date anyone means (and datetime cannot hold it).
_MIN_MS, _MAX_MS = 0, 253_402_300_799_000     # 1970 .. 9999-12-31


def spec_from_pb(spec: pb.GridEventSpec) -> GridEventSpec:
    """The domain spec; `InvalidEvent` for what cannot even be represented (validation of the
    values is `model.validate`'s)."""
    for name in ("start_unix_ms", "end_unix_ms"):
        if not _MIN_MS < getattr(spec, name) <= _MAX_MS:
            raise InvalidEvent(f"{name} must be a time after 1970 (milliseconds since the Unix epoch)")
    return GridEventSpec(
        program=spec.program, target_group=spec.target_group, start=from_ms(spec.start_unix_ms),
        end=from_ms(spec.end_unix_ms), target_power_w=spec.target_power_w,
        precharge_s=spec.precharge_s if spec.HasField("precharge_s") else DEFAULT_PRECHARGE_S,
        rate_per_kwh=spec.rate_per_kwh if spec.HasField("rate_per_kwh") else None,
        name=spec.name, external_id=spec.external_id)


def spec_to_pb(spec: GridEventSpec) -> pb.GridEventSpec:
    return pb.GridEventSpec(
        program=spec.program, target_group=spec.target_group, start_unix_ms=to_ms(spec.start),
        end_unix_ms=to_ms(spec.end), target_power_w=spec.target_power_w, precharge_s=spec.precharge_s,
        rate_per_kwh=spec.rate_per_kwh, name=spec.name, external_id=spec.external_id)


def event_to_pb(event: GridEvent) -> pb.GridEvent:
    return pb.GridEvent(
        event_id=event.event_id, spec=spec_to_pb(event.spec), state=EVENT_STATES[event.state],
        revision=event.revision, rate_per_kwh=str(event.rate_per_kwh), currency=event.currency,
        fanout_id=event.fanout_id, participants=event.participants, created_unix_ms=to_ms(event.created),
        source=event.spec.source.value)


def participant_to_pb(row: Mapping[str, Any]) -> pb.Participant:
    return pb.Participant(installation_id=row["installation_id"], power_w=row["power_w"],
                          status=PARTICIPANT_STATUSES[row["status"]], reason=row["reason"],
                          command_id=row["command_id"])


def contribution_to_pb(snapshot: ContributionSnapshot) -> pb.Contribution:
    node, mine = snapshot.node, snapshot.installation
    message = pb.Contribution(at_unix_ms=snapshot.at_ms, path=node.path, discharge_w=node.discharge_w,
                              installations_reporting=node.installations_reporting,
                              newest_sample_unix_ms=node.newest_sample_ms or 0)
    if mine is not None:
        message.installation.CopyFrom(pb.InstallationContribution(
            installation_id=mine.installation_id, battery_power_w=mine.battery_power_w,
            discharge_w=mine.discharge_w, sample_unix_ms=mine.sample_ms, counted=mine.counted))
    return message


def report_to_pb(event: GridEvent, settlement: Settlement) -> pb.EventReport:
    return pb.EventReport(
        event_id=event.event_id, start_unix_ms=to_ms(settlement.start), end_unix_ms=to_ms(settlement.end),
        rate_per_kwh=str(settlement.rate_per_kwh), currency=event.currency, complete=settlement.complete,
        discharged_wh=settlement.discharged_wh, compensation=str(settlement.compensation),
        installations=[pb.InstallationEnergy(
            installation_id=p.installation_id, status=PARTICIPANT_STATUSES[p.status],
            discharged_wh=p.energy.discharged_wh, charged_wh=p.energy.charged_wh, samples=p.energy.samples,
            coverage=p.energy.coverage, compensation=str(p.compensation)) for p in settlement.participants])
