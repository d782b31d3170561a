"""The live contribution index: per-node discharge sums, incrementally and exactly."""

from __future__ import annotations

import math
import random

import pytest

from services.control.vpp.contribution import ContributionIndex, ancestors

MEMBERS = {
    "a": ["utility.pge.north.f1", "program.ca_vpp.enrolled"],
    "b": ["utility.pge.north.f2"],
    "c": ["utility.pge.south", "utility.pge.north.f1"],   # two paths sharing ancestors: counted once
    "d": ["utility.sce"],
}


def _sums(latest: dict[str, float], members: dict[str, list[str]]) -> dict[str, tuple[float, int]]:
    out: dict[str, tuple[float, int]] = {}
    for inst, power in latest.items():
        for node in ancestors(members.get(inst, [])):
            s, n = out.get(node, (0.0, 0))
            out[node] = (s + max(power, 0.0), n + 1)
    return out


def test_ancestors() -> None:
    assert ancestors(["utility.region.program.feeder"]) == (
        "utility", "utility.region", "utility.region.program", "utility.region.program.feeder")
    assert ancestors(["a.b", "a.c", "a.b"]) == ("a", "a.b", "a.c")
    assert ancestors([""]) == ()


def test_sums_at_several_depths() -> None:
    index = ContributionIndex(MEMBERS)
    index.update("a", 1_000, 3_100.0)
    index.update("b", 1_000, -2_000.0)    # charging: reports, contributes 0
    index.update("c", 1_500, 1_000.0)
    index.update("d", 900, 500.0)
    assert index.node("utility").discharge_w == pytest.approx(4_600.0)
    assert index.node("utility").installations_reporting == 4
    assert index.node("utility.pge").discharge_w == pytest.approx(4_100.0)
    assert index.node("utility.pge.north.f1").installations_reporting == 2
    f2 = index.node("utility.pge.north.f2")
    assert f2.discharge_w == 0 and f2.installations_reporting == 1
    assert index.node("program.ca_vpp").discharge_w == pytest.approx(3_100.0)
    assert index.node("utility").newest_sample_ms == 1_500
    assert index.node("nowhere").installations_reporting == 0 and index.node("nowhere").newest_sample_ms is None
    inst = index.installation("b")
    assert inst is not None and inst.battery_power_w == -2_000.0 and inst.discharge_w == 0 and inst.counted


def test_older_duplicate_and_non_finite_samples_are_ignored() -> None:
    index = ContributionIndex(MEMBERS)
    assert index.update("a", 2_000, 1_000.0)
    assert not index.update("a", 2_000, 9_999.0)
    assert not index.update("a", 1_000, 9_999.0)
    assert not index.update("a", 3_000, math.nan)
    assert not index.update("a", 3_000, math.inf)
    assert index.node("utility").discharge_w == 1_000.0
    assert index.update("a", 3_000, 250.0)
    assert index.node("utility.pge.north.f1").discharge_w == 250.0
    assert index.node("utility.pge.north.f1").installations_reporting == 1


def test_stale_installations_drop_out_and_come_back() -> None:
    index = ContributionIndex(MEMBERS, stale_after_s=30)
    index.update("a", 0, 1_000.0)
    index.update("b", 20_000, 2_000.0)
    assert index.sweep(now_ms=29_000) == 0
    assert index.sweep(now_ms=31_000) == 1
    assert index.node("utility.pge.north").discharge_w == 2_000.0
    assert index.node("utility.pge.north").installations_reporting == 1
    assert index.node("program.ca_vpp").installations_reporting == 0
    assert index.node("program.ca_vpp").newest_sample_ms is None
    inst = index.installation("a")
    assert inst is not None and not inst.counted
    assert not index.update("a", 0, 5.0)        # still not newer
    index.update("a", 40_000, 700.0)
    assert index.node("utility.pge.north").discharge_w == 2_700.0
    assert index.installations_counted == 2


def test_reload_keeps_samples() -> None:
    index = ContributionIndex(MEMBERS)
    index.update("a", 1_000, 1_000.0)
    index.update("e", 1_000, 400.0)          # not a member of anything yet
    assert index.node("utility").discharge_w == 1_000.0
    index.set_memberships({"a": ["utility.sce"], "e": ["utility.sce.east"]})
    assert index.node("utility.pge").installations_reporting == 0
    assert index.node("utility.sce").discharge_w == 1_400.0
    assert index.node("utility.sce.east").newest_sample_ms == 1_000
    index.update("e", 2_000, 600.0)
    assert index.node("utility").discharge_w == 1_600.0


def test_random_stream_matches_a_recomputation() -> None:
    rng = random.Random(7)
    members = {f"i{k}": [f"u{k % 3}.r{k % 5}.f{k % 11}", f"program.p{k % 2}.enrolled"] for k in range(200)}
    index = ContributionIndex(members, stale_after_s=10)
    latest: dict[str, tuple[int, float]] = {}
    now = 0
    for step in range(20_000):
        now += rng.randint(0, 3)
        inst = f"i{rng.randrange(200)}"
        ts = now - rng.randint(0, 5) * 1_000
        power = rng.choice([rng.uniform(-5_000, 5_000), math.nan, 0.0])
        if index.update(inst, ts, power):
            latest[inst] = (ts, power)
        if step % 1_000 == 999:
            now_ms = now + 1_000
            index.sweep(now_ms)
            fresh = {i: p for i, (t, p) in latest.items() if t >= now_ms - 10_000}
            expected = _sums(fresh, members)
            for node, (total, count) in expected.items():
                got = index.node(node)
                assert got.discharge_w == pytest.approx(total, abs=0.01) and got.installations_reporting == count
            if step == 9_999:
                members = {i: [f"x{k % 4}.y"] for k, i in enumerate(members)}
                index.set_memberships(members)
