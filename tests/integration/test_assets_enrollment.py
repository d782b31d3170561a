"""Program enrollment through the AssetService: legal walks, illegal transitions refused with a
clear error and nothing written, the audit trail, concurrency, and the database's own guard."""

import asyncio

import asyncpg
import grpc
import pytest

from gridtwin.api.assets.v1 import assets_pb2 as pb
from services.access.model import Scope

pytestmark = pytest.mark.integration

PROGRAM = "program.ca_vpp"
UNENROLLED, ELIGIBLE, PENDING, ENROLLED = (pb.ENROLLMENT_STATE_UNENROLLED, pb.ENROLLMENT_STATE_ELIGIBLE,
                                          pb.ENROLLMENT_STATE_PENDING, pb.ENROLLMENT_STATE_ENROLLED)


@pytest.fixture
async def world(assets):
    await assets.group("utility.pge")
    await assets.call("CreateProgram", pb.CreateProgramRequest(path=PROGRAM))
    await assets.installation("site-1", -121.5, 38.5, "utility.pge")
    return assets


def change(target: int, site: str = "site-1", reason: str = "") -> pb.ChangeEnrollmentRequest:
    return pb.ChangeEnrollmentRequest(installation_id=site, program=PROGRAM, target=target, reason=reason)


async def state(assets, site: str = "site-1") -> int:
    answer = await assets.call("GetEnrollment", pb.GetEnrollmentRequest(installation_id=site, program=PROGRAM))
    return answer.state


async def in_group(assets, path: str) -> list[str]:
    answer = await assets.call("ListGroupInstallations", pb.ListGroupInstallationsRequest(path=path))
    return list(answer.installation_ids)


async def test_a_legal_walk_with_its_audit_trail(world):
    assets = world
    operator = await assets.token(Scope.COMMAND, paths=("utility.pge", PROGRAM), name="vpp-operator")
    principal = await assets.pool.fetchval("SELECT principal_id FROM api_principals WHERE name = 'vpp-operator'")
    assert await state(assets) == UNENROLLED
    walk = [(ELIGIBLE, "meets requirements"), (PENDING, "customer accepted"), (ENROLLED, "utility confirmed"),
            (UNENROLLED, "customer left"), (ELIGIBLE, "came back")]
    previous = UNENROLLED
    for target, reason in walk:
        answer = await assets.call("ChangeEnrollment", change(target, reason=reason), operator)
        assert (answer.from_state, answer.to_state, answer.actor, answer.reason) == (
            previous, target, f"token:{principal}", reason)
        assert await state(assets) == target
        for name, value in (("eligible", ELIGIBLE), ("pending", PENDING), ("enrolled", ENROLLED)):
            assert await in_group(assets, f"{PROGRAM}.{name}") == (["site-1"] if target == value else [])
        previous = target

    history = await assets.call("ListEnrollmentHistory", pb.ListEnrollmentHistoryRequest(
        installation_id="site-1", program=PROGRAM))
    assert [(c.from_state, c.to_state, c.reason) for c in history.changes] == [
        (UNENROLLED, ELIGIBLE, "meets requirements"), (ELIGIBLE, PENDING, "customer accepted"),
        (PENDING, ENROLLED, "utility confirmed"), (ENROLLED, UNENROLLED, "customer left"),
        (UNENROLLED, ELIGIBLE, "came back")]
    times = [c.at_unix_ms for c in history.changes]
    assert times == sorted(times) and times[0] > 1_700_000_000_000


@pytest.mark.parametrize(("setup", "target", "message"), [
    ([], PENDING, "cannot go from unenrolled to pending; from unenrolled the next state can be eligible"),
    ([], ENROLLED, "cannot go from unenrolled to enrolled"),
    ([], UNENROLLED, "already unenrolled"),
    ([ELIGIBLE], ENROLLED, "cannot go from eligible to enrolled; from eligible the next state can be pending or "
                           "unenrolled"),
    ([ELIGIBLE], ELIGIBLE, "already eligible"),
    ([ELIGIBLE, PENDING, ENROLLED], PENDING, "cannot go from enrolled to pending"),
    ([ELIGIBLE, PENDING, ENROLLED], ENROLLED, "already enrolled"),
])
async def test_illegal_transitions_are_refused_and_change_nothing(world, setup, target, message):
    assets = world
    for step in setup:
        await assets.call("ChangeEnrollment", change(step))
    before = await assets.counts()
    current = await state(assets)
    code, detail = await assets.outcome("ChangeEnrollment", change(target))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert detail.startswith(f"installation 'site-1' in '{PROGRAM}': ")
    assert message in detail
    assert await assets.counts() == before
    assert await state(assets) == current


async def test_bad_requests(world):
    assets = world
    code, detail = await assets.outcome("ChangeEnrollment", change(pb.ENROLLMENT_STATE_UNSPECIFIED))
    assert (code, detail) == (grpc.StatusCode.INVALID_ARGUMENT, "target: unknown or unspecified value 0")
    code, _ = await assets.outcome("ChangeEnrollment", change(ELIGIBLE, site="nobody"))
    assert code == grpc.StatusCode.NOT_FOUND
    code, detail = await assets.outcome("ChangeEnrollment", pb.ChangeEnrollmentRequest(
        installation_id="site-1", program="program.other", target=ELIGIBLE))
    assert (code, detail) == (grpc.StatusCode.NOT_FOUND, "program 'program.other' does not exist")
    code, detail = await assets.outcome("ChangeEnrollment", pb.ChangeEnrollmentRequest(
        installation_id="site-1", program="utility.pge", target=ELIGIBLE))   # a group, not a program
    assert code == grpc.StatusCode.NOT_FOUND
    code, detail = await assets.outcome("ChangeEnrollment", pb.ChangeEnrollmentRequest(
        installation_id="site-1", program="program.ca-vpp", target=ELIGIBLE))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "'ca-vpp'" in detail


async def test_concurrent_requests_take_one_transition(world):
    assets = world
    await assets.call("ChangeEnrollment", change(ELIGIBLE))
    outcomes = await asyncio.gather(*(assets.outcome("ChangeEnrollment", change(PENDING)) for _ in range(8)))
    codes = sorted(code.name for code, _ in outcomes)
    assert codes == ["FAILED_PRECONDITION"] * 7 + ["OK"]
    history = await assets.call("ListEnrollmentHistory", pb.ListEnrollmentHistoryRequest(
        installation_id="site-1", program=PROGRAM))
    assert len(history.changes) == 2


async def test_the_database_holds_one_state_per_program(world):
    assets = world
    await assets.call("ChangeEnrollment", change(ELIGIBLE))
    with pytest.raises(asyncpg.UniqueViolationError):
        await assets.pool.execute(
            "INSERT INTO group_memberships (installation_id, path, program, enrollment_state) "
            "VALUES ('site-1', 'program.ca_vpp.enrolled', 'program.ca_vpp', 'enrolled')")
    with pytest.raises(asyncpg.CheckViolationError):
        await assets.pool.execute(
            "INSERT INTO group_memberships (installation_id, path, program, enrollment_state) "
            "VALUES ('site-1', 'utility.pge', 'program.ca_vpp', 'pending')")
