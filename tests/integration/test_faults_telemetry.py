"""Faults on the telemetry and command path, CI-sized (bench/fault_cases.py, the cases of
`python -m bench.faults`): the gateway and an ingest member SIGKILLed while a few hundred
devices stream, and the gateway killed while a plan per device is being delivered. Real
processes (`gridtwin gateway`, `gridtwin ingest`, `gridtwin control serve`) on a Ray head of
the module's own; after each fault the simulator's ledger is compared with the store, the
rollups, every twin (applied counts, state against the pure model) and the alerts.

Shard and weather-poller kills are proven by test_twins_runtime.py and
test_stormwatch_runtime.py; the report command runs them on this stand as well."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from bench import fault_cases as cases
from bench.fault_rig import Rig, isolated_kafka, run_suffix, running_rig
from gridtwin.settings import Settings

pytestmark = pytest.mark.integration

DEVICES = 200


@pytest.fixture(scope="module")
async def stand(platform: Settings,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Rig, asyncpg.Pool]]:
    settings = platform.model_copy(update={"kafka": isolated_kafka(platform.kafka, run_suffix())})
    # Two ingest members from the start: the group has settled by the time the ingest kill needs it.
    async with running_rig(settings, tmp_path_factory.mktemp("faults"), control=True, ingest_members=2) as running:
        yield running


def assert_nothing_lost_or_duplicated(result: cases.CaseResult) -> None:
    print(result)
    assert result.samples is not None and result.samples.generated > DEVICES * 5
    assert (result.lost(), result.duplicated()) == (0, 0), result
    assert result.ok, result


async def test_gateway_kill_loses_and_duplicates_nothing(stand: tuple[Rig, asyncpg.Pool]) -> None:
    rig, pool = stand
    result = await cases.gateway_kill(rig, pool, DEVICES, prefix="tgwk")
    assert_nothing_lost_or_duplicated(result)
    assert result.figures["sessions"] >= 2 * DEVICES           # every device really reconnected
    assert result.twins is not None and result.twins.twins == DEVICES
    assert result.alerts is not None and result.alerts.expected >= DEVICES // 10
    assert result.alerts.cleared >= DEVICES // 20                # raised before the kill, cleared after it


async def test_ingest_member_killed_mid_batch_loses_and_duplicates_nothing(stand: tuple[Rig, asyncpg.Pool]) -> None:
    rig, pool = stand
    result = await cases.ingest_kill(rig, pool, DEVICES, prefix="tink")
    assert_nothing_lost_or_duplicated(result)
    assert result.twins is not None and result.twins.twins == DEVICES


async def test_commands_in_flight_through_a_gateway_kill_are_acknowledged_and_executed_once(
        stand: tuple[Rig, asyncpg.Pool]) -> None:
    rig, pool = stand
    result = await cases.commands_during_gateway_kill(rig, pool, DEVICES, prefix="tcgk")
    assert_nothing_lost_or_duplicated(result)
    assert result.commands is not None
    assert result.commands.acknowledged == DEVICES and result.commands.executed_twice == 0
