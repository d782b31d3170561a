"""Fixtures over the real components, started by the project's own infra code.

Each test session uses its own database (`<name>_test_<run>`, dropped at the end) in the project's
Postgres cluster and topics with the same run suffix on the project's broker, so it never disturbs
a running platform or another test session.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from gridtwin import db, kafka_topics, ray_env
from gridtwin.app import infra
from gridtwin.settings import Settings
from services.telemetry.store import init_connection


@pytest.fixture(scope="session")
def settings() -> Settings:
    base = Settings()
    run = uuid.uuid4().hex[:8]
    url = base.postgres.url.rsplit("/", 1)
    return base.model_copy(update={
        "postgres": base.postgres.model_copy(update={"url": f"{url[0]}/{url[1]}_test_{run}"}),
        "kafka": base.kafka.model_copy(update={
            "telemetry_topic": f"telemetry-{run}",
            "device_events_topic": f"device-events-{run}",
            "alerts_topic": f"twin-alerts-{run}",
            "telemetry_partitions": 4,
        }),
        "twins": base.twins.model_copy(update={
            "ray_address": "local", "namespace": f"gridtwin-test-{run}", "port": 0, "metrics_port": 0}),
        "ingest": base.ingest.model_copy(update={"group_id": f"ingest-{run}", "metrics_port": 0}),
        "gateway": base.gateway.model_copy(update={"port": 0, "metrics_port": 0}),
        "api": base.api.model_copy(update={"port": 0, "metrics_port": 0}),
    })


@pytest.fixture(scope="session")
def platform(settings: Settings) -> Iterator[Settings]:
    """Postgres (fresh test database, migrated) and the broker (with this run's topics)."""
    infra.ensure_postgres(settings.postgres)
    infra.ensure_database(settings.postgres)
    db.migrate(settings.postgres)
    infra.ensure_broker(settings.kafka, settings.var_dir)
    asyncio.run(kafka_topics.ensure_topics(settings.kafka, kafka_topics.platform_topics(settings.kafka)))
    yield settings
    infra.drop_database(settings.postgres)


@pytest.fixture
def isolated(platform: Settings) -> Settings:
    """The platform with topics and a consumer group of this test's own, so records produced by
    other tests never reach this test's consumers."""
    suffix = uuid.uuid4().hex[:8]
    kafka = platform.kafka.model_copy(update={
        "telemetry_topic": f"telemetry-{suffix}", "device_events_topic": f"device-events-{suffix}",
        "alerts_topic": f"twin-alerts-{suffix}"})
    asyncio.run(kafka_topics.ensure_topics(kafka, kafka_topics.platform_topics(kafka)))
    ingest = platform.ingest.model_copy(update={"group_id": f"ingest-{suffix}"})
    return platform.model_copy(update={"kafka": kafka, "ingest": ingest})


@pytest.fixture(scope="session")
async def pool(platform: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(platform.postgres.url, min_size=1, max_size=8, init=init_connection)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def clean_db(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.execute("TRUNCATE telemetry_samples, telemetry_rollups, devices, installations, customers, "
                       "hierarchy_groups, programs, vpp_program_terms, group_memberships, enrollment_audit, "
                       "api_principals")
    return pool


@pytest.fixture(scope="session")
async def assets_engine(platform: Settings) -> AsyncIterator[object]:
    """A SQLAlchemy AsyncEngine (with the ltree codec) on the test database."""
    from services.assets.database import create_engine

    engine = create_engine(platform.postgres, pool_size=4)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def assets_api(platform: Settings, assets_engine: object) -> AsyncIterator[object]:
    """The AssetService on an ephemeral port, trusting no cached credential (revocations act at once)."""
    from services.assets.api import AssetApi

    settings = platform.assets.model_copy(update={"port": 0, "metrics_port": 0, "auth_cache_s": 0.0})
    async with AssetApi(settings, assets_engine) as api:  # type: ignore[arg-type]
        yield api


@pytest.fixture
async def assets(clean_db: asyncpg.Pool, assets_api: object) -> AsyncIterator[object]:
    """An empty database and a client of the AssetService (tests/integration/assets_client.py)."""
    from tests.integration.assets_client import AssetsClient

    async with AssetsClient.connect(assets_api, clean_db) as client:  # type: ignore[arg-type]
        yield client


@pytest.fixture(scope="session")
def ray_cluster(platform: Settings) -> Iterator[Settings]:
    """A Ray cluster started by this test session (once), shut down at its end; the returned
    settings point every twin process of the session at it (`twins.ray_address`)."""
    import ray

    from actors.runtime.cluster import connect

    connect(platform.twins)
    address = ray.get_runtime_context().gcs_address
    yield platform.model_copy(update={"twins": platform.twins.model_copy(update={"ray_address": address})})
    ray.shutdown()


def pytest_configure() -> None:
    ray_env.configure_ray_auth()


def pytest_report_header() -> str:
    return f"gridtwin tests: real Postgres and broker (pid {os.getpid()})"
