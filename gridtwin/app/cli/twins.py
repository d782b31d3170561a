"""`gridtwin twins …`: the twin runtime process and operator commands."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from gridtwin.app.cli import client, output
from gridtwin.app.cli.errors import USAGE, CliError
from gridtwin.app.cli.output import Format, OutputOption
from gridtwin.settings import Settings

app = typer.Typer(help="The digital twins: show one and list alerts (TwinService); on the platform's machine, "
                       "the runtime process, shard layout and statistics.", no_args_is_help=True)


@app.command("serve")
def serve() -> None:
    """Runs the twin runtime (coordinator, shards, supervision) and the TwinService gRPC API."""
    from gridtwin.app import wiring as services

    settings = Settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.twins(settings))


@app.command("reshard")
def reshard(shards: Annotated[int, typer.Option(help="The new number of shard actors")]) -> None:
    """Moves every twin to a layout of N shards without losing state (the old shards snapshot
    their twins and stop; the new ones recover them)."""
    from actors.runtime.cluster import start_runtime

    async def run() -> None:
        runtime = await start_runtime(Settings())
        await runtime.router.reshard(shards)
        typer.echo(f"layout: epoch {runtime.router.epoch}, {runtime.router.count} shards")

    asyncio.run(run())


@app.command("stats")
def stats() -> None:
    """Per shard: resident twins, samples, alert changes, snapshots, memory."""
    from actors.runtime.cluster import start_runtime

    async def run() -> None:
        runtime = await start_runtime(Settings())
        for shard in await runtime.router.stats():
            typer.echo(json.dumps(shard))

    asyncio.run(run())


def _twin_record(t: Any) -> dict[str, object]:
    from gridtwin.api.device.v1 import device_pb2 as device

    r, d = t.reported, t.desired

    def signal(name: str) -> object:
        return getattr(r, name) if r.HasField(name) else None   # unset: not reported (not 0)

    return {"installation_id": t.installation_id, "version": t.version, "device_id": r.device_id,
            "reported_at": output.when(r.timestamp_unix_ms), "site_power_w": signal("site_power_w"),
            "battery_power_w": signal("battery_power_w"), "solar_power_w": signal("solar_power_w"),
            "load_power_w": signal("load_power_w"), "state_of_charge_pct": signal("state_of_charge_pct"),
            "grid_status": device.GridStatus.Name(r.grid_status), "mode": device.OperationMode.Name(r.mode),
            "plan_id": d.plan_id, "plan_source": d.plan_source, "active_action": d.active_action,
            "reported_plan_id": d.reported_plan_id, "stormwatch_active": t.stormwatch.active,
            "stormwatch_alert": t.stormwatch.event or t.stormwatch.alert_id,
            "stormwatch_until": output.when(t.stormwatch.until_unix_ms), "vpp_event_id": t.vpp.event_id,
            "vpp_status": t.vpp.status, "open_alerts": [a.rule for a in t.open_alerts],
            "samples_applied": t.samples_applied, "samples_ignored": t.samples_ignored,
            "samples_rejected": t.samples_rejected}


@app.command("show")
def show(installation_id: Annotated[str, typer.Argument()], fmt: OutputOption = Format.table) -> None:
    """An installation's twin (TwinService.GetTwin): reported state, plan, StormWatch, VPP, open
    alerts. A signal the newest sample did not report is empty, not 0."""
    from gridtwin.api.twins.v1 import twin_service_pb2 as pb
    from gridtwin.api.twins.v1 import twin_service_pb2_grpc as pb_grpc

    with client.api("twins") as api:
        twin = api.call(pb_grpc.TwinServiceStub(api.channel).GetTwin,
                        pb.GetTwinRequest(installation_id=installation_id))
    output.emit_one(_twin_record(twin), fmt, title=f"twin {installation_id}")


ALERT_STATES = ("raised", "ongoing", "cleared")
SEVERITIES = ("info", "warning", "critical")


@app.command("alerts")
def alerts(
    installation: Annotated[str, typer.Option(help="one installation ('' = every one the token sees)")] = "",
    rule: Annotated[str, typer.Option(help="one rule, e.g. solar_negative")] = "",
    state: Annotated[list[str] | None, typer.Option(help=f"{', '.join(ALERT_STATES)} or open (repeatable)")] = None,
    min_severity: Annotated[str, typer.Option(help=f"{', '.join(SEVERITIES)}")] = "info",
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 100,
    fmt: OutputOption = Format.table,
) -> None:
    """The twins' alerts (TwinService.ListAlerts), newest first. (Acknowledging an alert is not
    offered: the TwinService has no such call yet.)"""
    from gridtwin.api.twins.v1 import twin_service_pb2 as pb
    from gridtwin.api.twins.v1 import twin_service_pb2_grpc as pb_grpc

    wanted = [w for s in state or [] for w in (("raised", "ongoing") if s == "open" else (s,))]
    if set(wanted) - set(ALERT_STATES) or min_severity not in SEVERITIES:
        raise CliError(f"--state: {', '.join(ALERT_STATES)} or open; --min-severity: {', '.join(SEVERITIES)}", USAGE)
    request = pb.ListAlertsRequest(installation_id=installation, rule=rule,
                                   min_severity=pb.Severity.Value(f"SEVERITY_{min_severity.upper()}"),
                                   states=[pb.AlertState.Value(f"ALERT_STATE_{w.upper()}") for w in wanted],
                                   page_size=min(limit, 1_000))
    with client.api("twins") as api:
        found = list(api.pages(pb_grpc.TwinServiceStub(api.channel).ListAlerts, request, "alerts", limit=limit))
    rows = [{"alert_id": a.alert_id, "installation_id": a.installation_id, "rule": a.rule,
             "severity": pb.Severity.Name(a.severity).removeprefix("SEVERITY_").lower(),
             "state": pb.AlertState.Name(a.state).removeprefix("ALERT_STATE_").lower(),
             "first_seen": output.when(a.first_seen_unix_ms),
             "last_seen": output.when(a.last_seen_unix_ms),
             "cleared": output.when(a.cleared_unix_ms), "samples": a.samples,
             "details": a.details_json} for a in found]
    output.emit(rows, ("alert_id", "installation_id", "rule", "severity", "state", "first_seen", "last_seen",
                       "cleared", "samples", "details"), fmt, right=("samples",), empty="no alerts")
