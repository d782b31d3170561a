"""A reconnect storm's cost to the database: hellos arriving together are authenticated with a
few batched queries, not one query each (services/assets/credentials.py), and every device still
gets its own answer."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.access.credentials import CredentialDirectory, register_devices
from services.telemetry.session import DeviceIdentity
from simulator.fleet import FleetOptions, registrations

pytestmark = pytest.mark.integration


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_a_thousand_hellos_at_once_cost_a_few_queries_and_each_gets_its_answer(clean_db: asyncpg.Pool) -> None:
    regs = registrations(FleetOptions(devices=1_000, fleet_secret="storm", id_prefix="storm"))
    await register_devices(clean_db, regs)
    directory = CredentialDirectory(clean_db, cache_s=60)
    lookups = counter("gridtwin_gateway_credential_lookups_total")
    queries = counter("gridtwin_gateway_credential_queries_total")
    asked = [(r.device_id, r.credential) for r in regs]
    asked += [(regs[0].device_id, "wrong"), ("storm-dev-unknown", "x"), (regs[1].device_id, regs[1].credential)]
    answers = await asyncio.gather(*(directory.authenticate(d, c) for d, c in asked))
    assert answers[:1_000] == [DeviceIdentity(r.device_id, r.installation_id) for r in regs]
    assert answers[1_000:] == ["bad_credential", "unknown_device", DeviceIdentity(regs[1].device_id,
                                                                                   regs[1].installation_id)]
    assert counter("gridtwin_gateway_credential_lookups_total") - lookups == len(asked)
    assert counter("gridtwin_gateway_credential_queries_total") - queries <= 4   # 1,003 lookups, ≤ 1,000 per query
    # Quiet times: one hello, one query, at once.
    assert await directory.authenticate(regs[2].device_id, "also wrong") == "bad_credential"
