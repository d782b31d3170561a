"""The ControlService over a real channel: submit, read, list, progress, cancel; access; bad input
gets INVALID_ARGUMENT / NOT_FOUND with a clear detail and stores nothing."""


import grpc
import pytest

from gridtwin.api.control.v1 import control_pb2 as pb
from gridtwin.api.control.v1 import control_pb2_grpc as pb_grpc
from gridtwin.api.device.v1 import device_pb2 as dpb
from gridtwin.unixtime import now_ms
from services.access.credentials import register_devices
from services.access.model import Scope
from services.control.api import ControlApi
from services.control.service import Control
from services.control.store import CommandStore
from simulator.fleet import FleetOptions, registrations
from tests.integration.assets_client import bearer

pytestmark = pytest.mark.integration


def plan_spec(*steps: dpb.PlanStep) -> pb.CommandSpec:
    return pb.CommandSpec(control_plan=dpb.ControlPlan(steps=list(steps)))


def charge(a_s: float, b_s: float, target: float = 90, power: float = 0) -> dpb.PlanStep:
    t = now_ms()
    return dpb.PlanStep(start_unix_ms=t + int(a_s * 1000), end_unix_ms=t + int(b_s * 1000),
                        charge_to=dpb.ChargeTo(target_state_of_charge_pct=target, max_power_w=power))


def discharge(a_s: float, b_s: float, power: float) -> dpb.PlanStep:
    t = now_ms()
    return dpb.PlanStep(start_unix_ms=t + int(a_s * 1000), end_unix_ms=t + int(b_s * 1000),
                        discharge=dpb.Discharge(power_w=power))


@pytest.fixture
async def world(assets, assets_engine, platform):
    pool = assets.pool
    await pool.execute("TRUNCATE control_commands, control_fanouts, control_device_sessions, control_gateways")
    await assets.group("utility.pge")
    await assets.group("utility.sce")
    await assets.installation("api-site-00000", -122.0, 37.5, "utility.pge")
    await assets.installation("api-site-00001", -118.0, 34.0, "utility.sce")
    await register_devices(pool, registrations(FleetOptions(devices=2, fleet_secret="s", id_prefix="api")))
    settings = platform.control.model_copy(update={"port": 0, "metrics_port": 0, "auth_cache_s": 0.0})
    async with ControlApi(settings, Control(CommandStore(pool)), assets_engine) as api, \
            grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        tokens = {
            "root": bearer(await assets.token(Scope.COMMAND)),
            "pge": bearer(await assets.token(Scope.COMMAND, paths=("utility.pge",))),
            "reader": bearer(await assets.token(Scope.READ)),
        }
        yield pb_grpc.ControlServiceStub(channel), tokens, pool


async def refused(call, request, metadata) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call(request, metadata=metadata)
    return error.value.code(), error.value.details() or ""


async def test_submit_get_list_progress_cancel(world):
    stub, tokens, pool = world
    request = pb.SubmitCommandRequest(installation_id="api-site-00000", spec=plan_spec(charge(0, 600)), ttl_s=60,
                                      idempotency_key="op-1", source="operator")
    first = await stub.SubmitCommand(request, metadata=tokens["pge"])
    again = await stub.SubmitCommand(request, metadata=tokens["pge"])
    assert not first.deduplicated and again.deduplicated
    assert again.command.command_id == first.command.command_id
    command = first.command
    assert (command.device_id, command.state, command.kind) == (
        "api-dev-00000", pb.COMMAND_STATE_QUEUED, pb.COMMAND_KIND_CONTROL_PLAN)
    assert command.expires_unix_ms - command.created_unix_ms == 60_000
    got = await stub.GetCommand(pb.GetCommandRequest(command_id=command.command_id), metadata=tokens["reader"])
    assert got.spec == request.spec and got.source == "operator"
    listed = await stub.ListCommands(pb.ListCommandsRequest(installation_id="api-site-00000"), metadata=tokens["pge"])
    assert [c.command_id for c in listed.commands] == [command.command_id]
    cancelled = await stub.CancelCommand(pb.CancelCommandRequest(command_id=command.command_id),
                                         metadata=tokens["pge"])
    assert cancelled.state == pb.COMMAND_STATE_CANCELLED
    again_cancelled = await stub.CancelCommand(pb.CancelCommandRequest(command_id=command.command_id),
                                               metadata=tokens["pge"])   # idempotent
    assert again_cancelled.state == pb.COMMAND_STATE_CANCELLED
    mode = pb.CommandSpec(set_mode=dpb.SetMode(mode=dpb.OPERATION_MODE_BACKUP))
    fanout = await stub.SubmitGroupCommand(pb.SubmitGroupCommandRequest(group_path="utility", spec=mode, ttl_s=30),
                                           metadata=tokens["root"])
    assert fanout.total == 2
    progress = await stub.GetFanOutProgress(pb.GetFanOutProgressRequest(fanout_id=fanout.fanout_id),
                                            metadata=tokens["reader"])
    assert progress.total == 2 and progress.pending == 2 and not progress.done
    stream = stub.StreamFanOutProgress(pb.StreamFanOutProgressRequest(fanout_id=fanout.fanout_id, interval_ms=50),
                                       metadata=tokens["reader"])
    first_update = await stream.read()
    assert first_update.pending == 2
    done = await stub.CancelFanOut(pb.CancelFanOutRequest(fanout_id=fanout.fanout_id), metadata=tokens["root"])
    assert done.done and done.unsuccessful == 2 and len(done.failures) == 2
    last = first_update
    while (update := await stream.read()) is not grpc.aio.EOF:
        last = update
    assert last.done


async def test_access(world):
    stub, tokens, _ = world
    request = pb.SubmitCommandRequest(installation_id="api-site-00001", spec=plan_spec(charge(0, 600)), ttl_s=60)
    assert (await refused(stub.SubmitCommand, request, ()))[0] == grpc.StatusCode.UNAUTHENTICATED
    code, detail = await refused(stub.SubmitCommand, request, tokens["reader"])
    assert code == grpc.StatusCode.PERMISSION_DENIED and "command scope" in detail
    code, detail = await refused(stub.SubmitCommand, request, tokens["pge"])   # sce is outside the token
    assert code == grpc.StatusCode.PERMISSION_DENIED and "outside" in detail
    group = pb.SubmitGroupCommandRequest(group_path="utility.sce", spec=plan_spec(charge(0, 600)), ttl_s=60)
    assert (await refused(stub.SubmitGroupCommand, group, tokens["pge"]))[0] == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(("request_", "code", "detail"), [
    (lambda: pb.SubmitCommandRequest(device_id="nobody", spec=plan_spec(charge(0, 60)), ttl_s=60),
     grpc.StatusCode.NOT_FOUND, "device 'nobody' does not exist"),
    (lambda: pb.SubmitCommandRequest(installation_id="nowhere", spec=plan_spec(charge(0, 60)), ttl_s=60),
     grpc.StatusCode.NOT_FOUND, "installation 'nowhere' does not exist"),
    (lambda: pb.SubmitCommandRequest(device_id="api-dev-00000", spec=plan_spec(charge(0, 60)), ttl_s=0),
     grpc.StatusCode.INVALID_ARGUMENT, "ttl_s"),
    (lambda: pb.SubmitCommandRequest(device_id="api-dev-00000", spec=plan_spec(charge(0, 60)), ttl_s=-5),
     grpc.StatusCode.INVALID_ARGUMENT, "ttl_s"),
    (lambda: pb.SubmitCommandRequest(device_id="api-dev-00000", spec=plan_spec(discharge(0, 60, -3_000)), ttl_s=60),
     grpc.StatusCode.INVALID_ARGUMENT, "discharge.power_w"),
    (lambda: pb.SubmitCommandRequest(device_id="api-dev-00000", ttl_s=60,
                                     spec=plan_spec(charge(60, 120), charge(0, 60))),
     grpc.StatusCode.INVALID_ARGUMENT, "time order"),
    (lambda: pb.SubmitCommandRequest(device_id="api-dev-00000", spec=plan_spec(charge(-7_200, -3_600)), ttl_s=60),
     grpc.StatusCode.INVALID_ARGUMENT, "in the past"),
    (lambda: pb.SubmitCommandRequest(device_id="api-dev-00000", spec=plan_spec(charge(0, 60, target=150)), ttl_s=60),
     grpc.StatusCode.INVALID_ARGUMENT, "target_state_of_charge_pct"),
    (lambda: pb.SubmitCommandRequest(device_id="bad id!", spec=plan_spec(charge(0, 60)), ttl_s=60),
     grpc.StatusCode.INVALID_ARGUMENT, "device_id"),
    (lambda: pb.SubmitCommandRequest(spec=plan_spec(charge(0, 60)), ttl_s=60),
     grpc.StatusCode.INVALID_ARGUMENT, "target"),
    (lambda: pb.SubmitCommandRequest(device_id="api-dev-00000", ttl_s=60),
     grpc.StatusCode.INVALID_ARGUMENT, "spec"),
    (lambda: pb.SubmitCommandRequest(device_id="api-dev-00000", ttl_s=60, spec=pb.CommandSpec(set_mode=dpb.SetMode())),
     grpc.StatusCode.INVALID_ARGUMENT, "set_mode.mode"),
])
async def test_bad_submissions_are_refused_clearly_and_store_nothing(world, request_, code, detail):
    stub, tokens, pool = world
    # built now, not at collection: plan times are relative to the moment of the call
    got_code, got_detail = await refused(stub.SubmitCommand, request_(), tokens["root"])
    assert got_code == code and detail in got_detail
    assert await pool.fetchval("SELECT count(*) FROM control_commands") == 0


async def test_bad_ids_groups_and_key_reuse(world):
    stub, tokens, _ = world
    cases = [
        (stub.GetCommand, pb.GetCommandRequest(command_id="../../etc"), grpc.StatusCode.INVALID_ARGUMENT, "command id"),
        (stub.GetCommand, pb.GetCommandRequest(command_id="0" * 32), grpc.StatusCode.NOT_FOUND, "does not exist"),
        (stub.GetFanOutProgress, pb.GetFanOutProgressRequest(fanout_id="x"), grpc.StatusCode.INVALID_ARGUMENT,
         "fan-out id"),
        (stub.GetFanOutProgress, pb.GetFanOutProgressRequest(fanout_id="f" * 32), grpc.StatusCode.NOT_FOUND,
         "does not exist"),
        (stub.ListCommands, pb.ListCommandsRequest(installation_id="nowhere"), grpc.StatusCode.NOT_FOUND,
         "does not exist"),
        (stub.ListCommands, pb.ListCommandsRequest(installation_id="api-site-00000", page_token="zz"),
         grpc.StatusCode.INVALID_ARGUMENT, "page_token"),
        (stub.SubmitGroupCommand, pb.SubmitGroupCommandRequest(group_path="utility.nowhere",
                                                               spec=plan_spec(charge(0, 60)), ttl_s=60),
         grpc.StatusCode.NOT_FOUND, "group 'utility.nowhere' does not exist"),
        (stub.SubmitGroupCommand, pb.SubmitGroupCommandRequest(group_path="utility..x",
                                                               spec=plan_spec(charge(0, 60)), ttl_s=60),
         grpc.StatusCode.INVALID_ARGUMENT, "group_path"),
    ]
    for call, request, code, detail in cases:
        got_code, got_detail = await refused(call, request, tokens["root"])
        assert (got_code, detail in got_detail) == (code, True), (request, got_detail)
    spec = plan_spec(charge(0, 600))
    await stub.SubmitCommand(pb.SubmitCommandRequest(device_id="api-dev-00000", spec=spec, ttl_s=60,
                                                     idempotency_key="k"), metadata=tokens["root"])
    code, detail = await refused(stub.SubmitCommand, pb.SubmitCommandRequest(
        device_id="api-dev-00000", spec=spec, ttl_s=90, idempotency_key="k"), tokens["root"])
    assert code == grpc.StatusCode.ALREADY_EXISTS and "different request" in detail
