"""`gridtwin vpp`: the VPP service process, and grid events from the shell."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gridtwin.settings import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True)
console = Console()


@app.command()
def serve() -> None:
    """Runs the VppService (gRPC, health, reflection), the OpenADR 3 REST endpoint, the relay of
    the twins' decisions and the live contribution tracker in the foreground."""
    from gridtwin.app import wiring as services

    settings = Settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.vpp(settings))


def _channel_call(method: str, request: object, token: str) -> object:
    from gridtwin.api.control.v1 import vpp_pb2_grpc
    from gridtwin.tls import channel as grpc_channel

    settings = Settings()
    with grpc_channel(f"{settings.vpp.host}:{settings.vpp.port}", settings.tls) as channel:
        stub = vpp_pb2_grpc.VppServiceStub(channel)
        return getattr(stub, method)(request, metadata=[("authorization", f"Bearer {token}")], timeout=30)


@app.command()
def create(
    program: Annotated[str, typer.Argument(help="ltree path of the VPP program")],
    power_kw: Annotated[float, typer.Argument(help="target discharge of the whole group, kW")],
    token: Annotated[str, typer.Option(envvar="GRIDTWIN_TOKEN", help="an AssetService token (command scope)")],
    group: Annotated[str, typer.Option(help="target group path ('' = the whole program)")] = "",
    start_in_min: Annotated[float, typer.Option(help="the window starts this many minutes from now")] = 30.0,
    minutes: Annotated[float, typer.Option(help="length of the window")] = 60.0,
    precharge_min: Annotated[float, typer.Option(help="charge off-peak this long before the start")] = 240.0,
    name: Annotated[str, typer.Option()] = "",
) -> None:
    """Creates a grid event through the VppService and prints it."""
    from gridtwin.api.control.v1 import vpp_pb2 as pb

    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=start_in_min)
    spec = pb.GridEventSpec(program=program, target_group=group, start_unix_ms=int(start.timestamp() * 1000),
                            end_unix_ms=int((start + dt.timedelta(minutes=minutes)).timestamp() * 1000),
                            target_power_w=power_kw * 1000, precharge_s=precharge_min * 60, name=name)
    event = _channel_call("CreateEvent", pb.CreateEventRequest(spec=spec), token)
    console.print(event)


@app.command()
def report(
    event_id: Annotated[str, typer.Argument(help="The event id")],
    token: Annotated[str, typer.Option(envvar="GRIDTWIN_TOKEN", help="an AssetService token (read scope)")],
) -> None:
    """Energy discharged per participant in the event's window and the compensation."""
    from gridtwin.api.control.v1 import vpp_pb2 as pb

    r = _channel_call("GetEventReport", pb.GetEventReportRequest(event_id=event_id), token)
    assert isinstance(r, pb.EventReport)
    table = Table(title=f"event {r.event_id} ({'final' if r.complete else 'so far'}, "
                        f"{r.rate_per_kwh} {r.currency}/kWh)")
    for column in ("installation", "status", "discharged kWh", "coverage", "compensation"):
        table.add_column(column, justify="left" if column in ("installation", "status") else "right")
    for i in r.installations:
        table.add_row(i.installation_id, pb.ParticipantStatus.Name(i.status).removeprefix("PARTICIPANT_STATUS_"),
                      f"{i.discharged_wh / 1000:.3f}", f"{i.coverage:.0%}", i.compensation)
    console.print(table)
    console.print(f"total {r.discharged_wh / 1000:.3f} kWh, {r.compensation} {r.currency}")
