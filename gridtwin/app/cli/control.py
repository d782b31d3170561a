"""`gridtwin control`: the ControlService process, and commands through the ControlService."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gridtwin import unixtime
from gridtwin.app.cli import client, output
from gridtwin.app.cli.output import Format, OutputOption
from gridtwin.settings import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True)


@app.command()
def serve() -> None:
    """Runs the ControlService (gRPC, health, reflection), the dispatcher and the acknowledgement
    consumer in the foreground."""
    from gridtwin.app import wiring as services

    settings = Settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.control(settings))


def _state(state: int) -> str:
    from gridtwin.api.control.v1 import control_pb2 as pb

    return pb.CommandState.Name(state).removeprefix("COMMAND_STATE_").lower()


def print_progress(p: Any, fmt: Format) -> None:
    """A fan-out's counts by state (and, for a table, its failures)."""
    rows = [{"state": _state(c.state), "commands": c.count} for c in p.counts]
    if fmt is not Format.table:
        output.emit(rows, ("state", "commands"), fmt)
        return
    output.emit(rows, ("state", "commands"), fmt, right=("commands",),
                title=f"fan-out {p.fanout_id} ({p.group_path or p.source})",
                empty=f"fan-out {p.fanout_id}: no commands")
    output.note(f"total {p.total}, completed {p.completed}, pending {p.pending}, unsuccessful {p.unsuccessful}, "
                f"done: {p.done}")
    for f in p.failures:
        output.note(f"  {f.device_id} ({f.installation_id}): {_state(f.state)} — {f.detail}")


@app.command()
def progress(fanout_id: Annotated[str, typer.Argument(help="The fan-out id")],
             fmt: OutputOption = Format.table) -> None:
    """Counts by state and failures of a fan-out (ControlService.GetFanOutProgress)."""
    from gridtwin.api.control.v1 import control_pb2 as pb
    from gridtwin.api.control.v1 import control_pb2_grpc as pb_grpc

    with client.api("control") as api:
        p = api.call(pb_grpc.ControlServiceStub(api.channel).GetFanOutProgress,
                     pb.GetFanOutProgressRequest(fanout_id=fanout_id))
    print_progress(p, fmt)


@app.command()
def charge(
    group: Annotated[str, typer.Argument(help="ltree group path, e.g. utility.pge")],
    target: Annotated[float, typer.Option(min=0, max=100, help="state of charge to reach, %")] = 100.0,
    minutes: Annotated[float, typer.Option(min=1, help="reach it within this many minutes")] = 60.0,
    ttl_s: Annotated[float, typer.Option(min=1, help="time to live of the commands")] = 600.0,
) -> None:
    """Sends a charge-to plan to every installation of a group (a fan-out; command scope on the
    group) and prints the fan-out's id on stdout."""
    from gridtwin.api.control.v1 import control_pb2 as pb
    from gridtwin.api.control.v1 import control_pb2_grpc as pb_grpc
    from gridtwin.api.device.v1 import device_pb2 as device

    now_ms = unixtime.now_ms()
    plan = device.ControlPlan(steps=[device.PlanStep(
        start_unix_ms=now_ms, end_unix_ms=now_ms + int(minutes * 60_000),
        charge_to=device.ChargeTo(target_state_of_charge_pct=target))])
    with client.api("control") as api:
        reply = api.call(pb_grpc.ControlServiceStub(api.channel).SubmitGroupCommand,
                         pb.SubmitGroupCommandRequest(group_path=group, spec=pb.CommandSpec(control_plan=plan),
                                                      ttl_s=ttl_s, source="operator"))
    output.note(f"fan-out {reply.fanout_id}: {reply.total} commands (gridtwin control progress {reply.fanout_id})")
    print(reply.fanout_id)
