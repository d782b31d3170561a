"""ltree hierarchies through the AssetService on real Postgres: groups at several depths, members
at any depth (`<@`), groups of an installation (`@>`), paging, and the rules around programs."""

import random

import asyncpg
import grpc
import pytest

from gridtwin.api.assets.v1 import assets_pb2 as pb
from services.assets.errors import InvalidArgument
from services.assets.model import GroupPath
from services.assets.paths import is_within, lineage, parse_path

pytestmark = pytest.mark.integration

LEAVES = [
    "utility.pge.north_ca.sacramento", "utility.pge.north_ca.redding", "utility.pge.bay_area",
    "utility.sce.la_basin.long_beach.downtown", "utility.sce.inland_empire", "utility.sdge",
    "region.us.ca.norcal", "region.us.ca.socal", "region.us.tx",
]


async def members(assets, path: str, page_size: int = 0) -> list[str]:
    ids, token = [], ""
    while True:
        page = await assets.call("ListGroupInstallations", pb.ListGroupInstallationsRequest(
            path=path, page_size=page_size, page_token=token))
        ids.extend(page.installation_ids)
        token = page.next_page_token
        if not token:
            return ids


async def test_members_at_any_depth_match_the_labels(assets):
    rng = random.Random(3)
    for leaf in LEAVES:
        await assets.group(leaf)
    membership: dict[str, list[str]] = {}
    for i in range(60):
        site = f"site-{i:03d}"
        # every site in one utility leaf, most also in a region leaf, a few in two utility leaves
        chosen = [rng.choice(LEAVES[:6])]
        if rng.random() < 0.7:
            chosen.append(rng.choice(LEAVES[6:]))
        if rng.random() < 0.1:
            chosen.append(rng.choice(LEAVES[:6]))
        membership[site] = list(dict.fromkeys(chosen))
        await assets.installation(site, -120 + i * 0.01, 36, *membership[site])

    every_group = sorted({p for leaf in LEAVES for p in lineage(GroupPath(leaf))})
    assert max(len(p.split(".")) for p in every_group) == 5
    for group in every_group:
        expected = sorted(s for s, paths in membership.items() if any(is_within(GroupPath(p), group) for p in paths))
        assert await members(assets, group) == expected, group
        assert await members(assets, group, page_size=7) == expected, group   # pages join up, no duplicates

    # the groups of an installation: its groups and all their ancestors
    for site in ("site-000", "site-017", "site-042"):
        answer = await assets.call("ListInstallationGroups", pb.ListInstallationGroupsRequest(installation_id=site))
        expected = sorted({p for path in membership[site] for p in lineage(GroupPath(path))})
        assert [g.path for g in answer.groups] == expected


async def test_descendants_and_ancestors_of_a_group(assets):
    await assets.call("CreateGroup", pb.CreateGroupRequest(path="utility.pge.north_ca.sacramento",
                                                           display_name="Sacramento"))
    await assets.call("CreateGroup", pb.CreateGroupRequest(path="utility.pge.bay_area", display_name="Bay Area"))
    await assets.group("utility.sce")

    def listing(path, relation=pb.RELATION_DESCENDANTS):
        return assets.call("ListGroups", pb.ListGroupsRequest(path=path, relation=relation))

    answer = await listing("utility.pge")
    assert [g.path for g in answer.groups] == [
        "utility.pge", "utility.pge.bay_area", "utility.pge.north_ca", "utility.pge.north_ca.sacramento"]
    assert [g.display_name for g in answer.groups] == ["", "Bay Area", "", "Sacramento"]
    answer = await listing("utility")
    assert len(answer.groups) == 6
    answer = await listing("utility.pge.north_ca.sacramento", pb.RELATION_ANCESTORS)
    assert [g.path for g in answer.groups] == [
        "utility", "utility.pge", "utility.pge.north_ca", "utility.pge.north_ca.sacramento"]
    code, detail = await assets.outcome("ListGroups", pb.ListGroupsRequest(path="utility.nowhere"))
    assert (code, detail) == (grpc.StatusCode.NOT_FOUND, "group 'utility.nowhere' does not exist")


async def test_groups_page_by_path(assets):
    for leaf in LEAVES:
        await assets.group(leaf)
    for relation in (pb.RELATION_DESCENDANTS, pb.RELATION_ANCESTORS):
        path = "utility" if relation == pb.RELATION_DESCENDANTS else "utility.sce.la_basin.long_beach.downtown"
        whole = await assets.call("ListGroups", pb.ListGroupsRequest(path=path, relation=relation))
        assert whole.next_page_token == "" and len(whole.groups) >= 5
        request, walked = pb.ListGroupsRequest(path=path, relation=relation, page_size=2), []
        while True:
            answer = await assets.call("ListGroups", request)
            assert len(answer.groups) <= 2
            walked.extend(g.path for g in answer.groups)
            if not answer.next_page_token:
                break
            request.page_token = answer.next_page_token
        assert walked == [g.path for g in whole.groups]   # nothing missed or repeated, in path order

    token = (await assets.call("ListGroups", pb.ListGroupsRequest(path="utility", page_size=2))).next_page_token
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    for request in (pb.ListGroupsRequest(path="region", page_token=token),           # another path
                    pb.ListGroupsRequest(path="utility", relation=pb.RELATION_ANCESTORS, page_token=token),
                    pb.ListGroupsRequest(path="utility", page_token=tampered),
                    pb.ListGroupsRequest(path="utility", page_token="utility.pge")):
        code, detail = await assets.outcome("ListGroups", request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in detail, (code, detail)


async def test_membership_changes(assets):
    await assets.group("utility.pge.north_ca")
    await assets.group("fleet.pilot")
    await assets.installation("site-1", -121.5, 38.5, "utility.pge.north_ca")
    add = pb.AddToGroupRequest(installation_id="site-1", path="fleet.pilot")
    await assets.call("AddToGroup", add)
    await assets.call("AddToGroup", add)   # idempotent
    assert await members(assets, "fleet") == ["site-1"]
    remove = pb.RemoveFromGroupRequest(installation_id="site-1", path="fleet.pilot")
    await assets.call("RemoveFromGroup", remove)
    assert await members(assets, "fleet") == []
    code, detail = await assets.outcome("RemoveFromGroup", remove)
    assert (code, detail) == (grpc.StatusCode.NOT_FOUND, "installation 'site-1' is not a member of 'fleet.pilot'")
    code, _ = await assets.outcome("AddToGroup", pb.AddToGroupRequest(installation_id="site-1", path="fleet.none"))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await assets.outcome("CreateGroup", pb.CreateGroupRequest(path="fleet.pilot"))
    assert code == grpc.StatusCode.ALREADY_EXISTS


async def test_program_groups_change_through_enrollment_only(assets):
    await assets.group("utility.pge")
    await assets.installation("site-1", -121.5, 38.5, "utility.pge")
    program = await assets.call("CreateProgram", pb.CreateProgramRequest(path="program.ca_vpp",
                                                                         display_name="California VPP"))
    assert (program.path, program.program) == ("program.ca_vpp", "program.ca_vpp")
    answer = await assets.call("ListGroups", pb.ListGroupsRequest(path="program.ca_vpp"))
    assert [(g.path, g.program) for g in answer.groups] == [
        ("program.ca_vpp", "program.ca_vpp"), ("program.ca_vpp.eligible", "program.ca_vpp"),
        ("program.ca_vpp.enrolled", "program.ca_vpp"), ("program.ca_vpp.pending", "program.ca_vpp")]

    code, detail = await assets.outcome("AddToGroup", pb.AddToGroupRequest(
        installation_id="site-1", path="program.ca_vpp.enrolled"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "ChangeEnrollment" in detail
    for path in ("program.ca_vpp.enrolled.extra", "program.ca_vpp.special"):
        code, _ = await assets.outcome("CreateGroup", pb.CreateGroupRequest(path=path))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, path
    code, _ = await assets.outcome("CreateProgram", pb.CreateProgramRequest(path="program.ca_vpp.inner"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, _ = await assets.outcome("CreateProgram", pb.CreateProgramRequest(path="utility.pge"))
    assert code == grpc.StatusCode.ALREADY_EXISTS

    await assets.call("ChangeEnrollment", pb.ChangeEnrollmentRequest(
        installation_id="site-1", program="program.ca_vpp", target=pb.ENROLLMENT_STATE_ELIGIBLE))
    groups = await assets.call("ListInstallationGroups", pb.ListInstallationGroupsRequest(installation_id="site-1"))
    assert [(g.path, g.program) for g in groups.groups] == [
        ("program", ""), ("program.ca_vpp", "program.ca_vpp"), ("program.ca_vpp.eligible", "program.ca_vpp"),
        ("utility", ""), ("utility.pge", "")]
    assert await members(assets, "program.ca_vpp") == ["site-1"]
    assert await members(assets, "program") == ["site-1"]


@pytest.mark.parametrize("text", ["a", "a.b_c.D9", "x" * 255, "a-b", "a..b", "a.", "a b", "x" * 256, "a.*", "a;b"])
async def test_label_rules_agree_with_the_server(pool, text):
    """What parse_path accepts, this PostgreSQL's ltree accepts (ASCII; locale letters aside)."""
    try:
        parse_path(text)
        ours = True
    except InvalidArgument:
        ours = False
    try:
        await pool.fetchval("SELECT $1::text::ltree", text)
        theirs = True
    except asyncpg.PostgresError:
        theirs = False
    assert ours == theirs, (text, ours, theirs)
