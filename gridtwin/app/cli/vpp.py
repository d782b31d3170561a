"""`gridtwin vpp`: the VPP service process, and grid events through the VppService."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from gridtwin.app.cli import client, output
from gridtwin.app.cli.output import Format, OutputOption
from gridtwin.settings import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True)

EventId = Annotated[str, typer.Argument(help="The event id (gridtwin vpp events)")]


@app.command()
def serve() -> None:
    """Runs the VppService (gRPC, health, reflection), the OpenADR 3 REST endpoint, the relay of
    the twins' decisions and the live contribution tracker in the foreground."""
    from gridtwin.app import wiring as services

    settings = Settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.vpp(settings))


def _event_record(e: Any) -> dict[str, object]:
    from gridtwin.api.control.v1 import vpp_pb2 as pb

    return {"event_id": e.event_id, "name": e.spec.name, "state": pb.EventState.Name(e.state).removeprefix(
        "EVENT_STATE_").lower(), "program": e.spec.program, "group": e.spec.target_group,
        "start": output.when(e.spec.start_unix_ms), "end": output.when(e.spec.end_unix_ms),
        "target_kw": e.spec.target_power_w / 1_000, "participants": e.participants,
        "rate_per_kwh": e.rate_per_kwh, "currency": e.currency, "fanout_id": e.fanout_id,
        "revision": e.revision, "source": e.source}


EVENT_COLUMNS = ("event_id", "name", "state", "program", "group", "start", "end", "target_kw", "participants",
                 "fanout_id")


@app.command()
def create(
    program: Annotated[str, typer.Argument(help="ltree path of the VPP program, e.g. program.demo_vpp")],
    power_kw: Annotated[float, typer.Argument(help="target discharge of the whole group, kW")],
    group: Annotated[str, typer.Option(help="target group path ('' = the whole program)")] = "",
    start_in_min: Annotated[float, typer.Option(help="the window starts this many minutes from now")] = 30.0,
    minutes: Annotated[float, typer.Option(help="length of the window")] = 60.0,
    precharge_min: Annotated[float, typer.Option(help="charge off-peak this long before the start")] = 240.0,
    name: Annotated[str, typer.Option()] = "",
    fmt: OutputOption = Format.table,
) -> None:
    """Creates a grid event (VppService.CreateEvent; command scope) and prints it."""
    from gridtwin.api.control.v1 import vpp_pb2 as pb
    from gridtwin.api.control.v1 import vpp_pb2_grpc as pb_grpc

    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=start_in_min)
    spec = pb.GridEventSpec(program=program, target_group=group, start_unix_ms=int(start.timestamp() * 1000),
                            end_unix_ms=int((start + dt.timedelta(minutes=minutes)).timestamp() * 1000),
                            target_power_w=power_kw * 1000, precharge_s=precharge_min * 60, name=name)
    with client.api("vpp") as api:
        event = api.call(pb_grpc.VppServiceStub(api.channel).CreateEvent, pb.CreateEventRequest(spec=spec))
    output.emit_one(_event_record(event), fmt, title=f"event {event.event_id}")


@app.command()
def events(
    ended: Annotated[bool, typer.Option("--ended", help="also the completed and cancelled ones")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1_000, help="at most this many (newest first)")] = 100,
    fmt: OutputOption = Format.table,
) -> None:
    """Lists grid events, newest first: scheduled and active ones (with --ended, all)."""
    from gridtwin.api.control.v1 import vpp_pb2 as pb
    from gridtwin.api.control.v1 import vpp_pb2_grpc as pb_grpc

    with client.api("vpp") as api:
        found = list(api.pages(pb_grpc.VppServiceStub(api.channel).ListEvents,
                               pb.ListEventsRequest(include_ended=ended, page_size=limit), "events", limit=limit))
    output.emit([_event_record(e) for e in found], EVENT_COLUMNS, fmt, right=("target_kw", "participants"),
                empty="no grid events" + ("" if ended else " scheduled or active (--ended for past ones)"))


@app.command()
def show(event_id: EventId, fmt: OutputOption = Format.table) -> None:
    """One grid event."""
    from gridtwin.api.control.v1 import vpp_pb2 as pb
    from gridtwin.api.control.v1 import vpp_pb2_grpc as pb_grpc

    with client.api("vpp") as api:
        event = api.call(pb_grpc.VppServiceStub(api.channel).GetEvent, pb.GetEventRequest(event_id=event_id))
    output.emit_one(_event_record(event), fmt, title=f"event {event_id}")


@app.command()
def cancel(event_id: EventId) -> None:
    """Cancels a grid event: every participant reverts to what it did before (command scope)."""
    from gridtwin.api.control.v1 import vpp_pb2 as pb
    from gridtwin.api.control.v1 import vpp_pb2_grpc as pb_grpc

    with client.api("vpp") as api:
        event = api.call(pb_grpc.VppServiceStub(api.channel).CancelEvent, pb.CancelEventRequest(event_id=event_id))
    output.note(f"event {event.event_id}: {pb.EventState.Name(event.state).removeprefix('EVENT_STATE_').lower()}")


def _status(status: int) -> str:
    from gridtwin.api.control.v1 import vpp_pb2 as pb

    return pb.ParticipantStatus.Name(status).removeprefix("PARTICIPANT_STATUS_").lower()


@app.command()
def participants(event_id: EventId, fmt: OutputOption = Format.table) -> None:
    """What each installation was asked and decided (accepted, declined for StormWatch, opted out)."""
    from gridtwin.api.control.v1 import vpp_pb2 as pb
    from gridtwin.api.control.v1 import vpp_pb2_grpc as pb_grpc

    with client.api("vpp") as api:
        found = list(api.pages(pb_grpc.VppServiceStub(api.channel).ListParticipants,
                               pb.ListParticipantsRequest(event_id=event_id), "participants"))
    rows = [{"installation_id": p.installation_id, "power_kw": p.power_w / 1_000, "status": _status(p.status),
             "reason": p.reason, "command_id": p.command_id} for p in found]
    output.emit(rows, ("installation_id", "power_kw", "status", "reason", "command_id"), fmt, right=("power_kw",),
                empty=f"event {event_id} has no participants")


@app.command()
def report(event_id: EventId, fmt: OutputOption = Format.table) -> None:
    """Energy discharged per participant in the event's window and the compensation."""
    from gridtwin.api.control.v1 import vpp_pb2 as pb
    from gridtwin.api.control.v1 import vpp_pb2_grpc as pb_grpc

    with client.api("vpp") as api:
        r = api.call(pb_grpc.VppServiceStub(api.channel).GetEventReport, pb.GetEventReportRequest(event_id=event_id))
    rows = [{"installation_id": i.installation_id, "status": _status(i.status),
             "discharged_kwh": round(i.discharged_wh / 1000, 3), "charged_kwh": round(i.charged_wh / 1000, 3),
             "coverage": round(i.coverage, 3), "compensation": i.compensation} for i in r.installations]
    output.emit(rows, ("installation_id", "status", "discharged_kwh", "charged_kwh", "coverage", "compensation"), fmt,
                title=f"event {r.event_id} ({'final' if r.complete else 'so far'}, {r.rate_per_kwh} {r.currency}/kWh)",
                right=("discharged_kwh", "charged_kwh", "coverage", "compensation"),
                empty=f"event {r.event_id}: no participants")
    if fmt is Format.table:
        output.note(f"total {r.discharged_wh / 1000:.3f} kWh, {r.compensation} {r.currency}")
