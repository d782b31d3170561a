"""A Postgres restart under load, CI-sized (bench/fault_cases.py `postgres_restart`): the
gateway, an ingest member and the twins keep running while `pg_ctlcluster restart -m fast` cuts
every connection. The cluster is the fault runs' own (`gridtwin_faults`, own port), never the
shared one other test sessions use. Nothing may be lost or stored twice, in the samples, the
rollups, the twins or the alerts."""

from __future__ import annotations

import asyncio

import pytest

from bench import fault_cases as cases
from bench.fault_rig import fault_postgres, isolated_kafka, run_suffix, running_rig
from gridtwin.settings import Settings

pytestmark = pytest.mark.integration

DEVICES = 200


async def test_a_postgres_restart_under_load_loses_and_duplicates_nothing(
        platform: Settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    owned = fault_postgres(platform.postgres, f"faults_test_{run_suffix()}")
    pg = await asyncio.to_thread(owned.__enter__)
    try:
        settings = platform.model_copy(update={"postgres": pg,
                                               "kafka": isolated_kafka(platform.kafka, run_suffix())})
        async with running_rig(settings, tmp_path_factory.mktemp("faults-pg")) as (rig, pool):
            result = await cases.postgres_restart(rig, pool, DEVICES, prefix="tpgr")
    finally:
        await asyncio.to_thread(owned.__exit__, None, None, None)
    print(result)
    assert result.samples is not None and result.samples.generated > DEVICES * 5
    assert (result.lost(), result.duplicated()) == (0, 0), result
    assert result.ok, result
    assert result.twins is not None and result.twins.twins == DEVICES
