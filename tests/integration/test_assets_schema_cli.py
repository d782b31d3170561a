"""The assets schema (SQLAlchemy description vs. migrated tables, migration 0003 over existing
devices, down and up again) and the `gridtwin assets` commands against the test database."""

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gridtwin import db
from gridtwin.app import infra
from gridtwin.app.cli import app
from services.assets.schema import metadata

pytestmark = pytest.mark.integration


async def test_schema_module_matches_the_migrated_tables(assets_engine, pool):
    def reflect(con):  # type: ignore[no-untyped-def]
        inspector = sa.inspect(con)
        return {t: {c["name"]: c["nullable"] for c in inspector.get_columns(t)} for t in metadata.tables}

    async with assets_engine.connect() as con:
        reflected = await con.run_sync(reflect)
    for name, table in metadata.tables.items():
        assert reflected[name] == {c.name: c.nullable for c in table.columns}, name
    indexes = {r["indexname"]: r["indexdef"] for r in await pool.fetch("SELECT indexname, indexdef FROM pg_indexes")}
    for table in metadata.tables.values():
        for index in table.indexes:
            assert index.name in indexes, index.name
            if index.dialect_options["postgresql"]["using"] == "gist":
                assert "USING gist" in indexes[index.name], index.name
    assert "USING gist (((location)::geography))" in indexes["installations_location_geography"]


def test_migration_keeps_existing_devices_and_goes_down_and_up(platform):
    pg = platform.postgres.model_copy(update={"url": platform.postgres.url + "_mig"})
    infra.ensure_database(pg)
    try:
        db.migrate(pg, "0002")

        async def before() -> None:
            con = await asyncpg.connect(pg.url)
            await con.execute("INSERT INTO devices (device_id, installation_id, credential_sha256) VALUES "
                              "('d1', 'site-a', decode(repeat('ab', 32), 'hex')), "
                              "('d2', 'site-a', decode(repeat('cd', 32), 'hex'))")
            await con.close()

        async def after() -> list[tuple[object, ...]]:
            con = await asyncpg.connect(pg.url)
            rows = await con.fetch("SELECT d.device_id, d.serial, d.kind, i.installation_id, i.location IS NULL "
                                   "FROM devices d JOIN installations i USING (installation_id) ORDER BY 1")
            await con.close()
            return [tuple(r) for r in rows]

        asyncio.run(before())
        db.migrate(pg)
        assert asyncio.run(after()) == [("d1", "d1", "gateway", "site-a", True),
                                        ("d2", "d2", "gateway", "site-a", True)]
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(db.MIGRATIONS))
        config.set_main_option("sqlalchemy.url", pg.url.replace("postgresql://", "postgresql+asyncpg://", 1))
        command.downgrade(config, "0002")
        db.migrate(pg)
    finally:
        infra.drop_database(pg)


# ------------------------------------------------------------ gridtwin assets …

def run(platform, *args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["assets", *args], env={"GRIDTWIN_POSTGRES__URL": platform.postgres.url})
    return result


def query(platform, sql: str, *params: object):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        con = await asyncpg.connect(platform.postgres.url)
        try:
            return await con.fetch(sql, *params)
        finally:
            await con.close()
    return asyncio.run(go())


CSV = """installation_id,customer_id,customer_name,longitude,latitude,time_zone,battery_nominal_energy_wh,groups
cli-csv-1,cli-cust-1,Ana,-121.49,38.58,America/Los_Angeles,13500,utility.cli.north;region.cli
cli-csv-2,cli-cust-1,Ana,-118.24,34.05,America/Los_Angeles,27000,utility.cli.south
"""


def test_import_csv_and_geojson(platform, tmp_path: Path):
    path = tmp_path / "fleet.csv"
    path.write_text(CSV)
    result = run(platform, "import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported 2 installations" in result.output
    rows = query(platform, "SELECT i.installation_id, ST_X(i.location) AS lon, m.path::text AS path "
                           "FROM installations i JOIN group_memberships m USING (installation_id) "
                           "WHERE i.installation_id LIKE 'cli-csv-%' ORDER BY 1, 3")
    assert [(r["installation_id"], r["lon"], r["path"]) for r in rows] == [
        ("cli-csv-1", -121.49, "region.cli"), ("cli-csv-1", -121.49, "utility.cli.north"),
        ("cli-csv-2", -118.24, "utility.cli.south")]

    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-97.74, 30.27]},
                 "properties": {"installation_id": "cli-geo-1", "time_zone": "America/Chicago",
                                "groups": ["utility.cli"]}}]
    path = tmp_path / "fleet.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = run(platform, "import", str(path))
    assert result.exit_code == 0, result.output
    assert query(platform, "SELECT time_zone FROM installations WHERE installation_id = 'cli-geo-1'")[0][0] == \
        "America/Chicago"


def test_import_refuses_a_bad_file_whole(platform, tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text(CSV.replace("cli-csv-", "cli-bad-").replace("-118.24,34.05", "-218.24,34.05"))
    result = run(platform, "import", str(path))
    assert result.exit_code == 1
    assert "row 3: location.longitude" in result.output
    assert query(platform, "SELECT count(*) FROM installations WHERE installation_id LIKE 'cli-bad-%'")[0][0] == 0


def test_seed_and_token(platform):
    result = run(platform, "seed", "--installations", "300", "--prefix", "clitest", "--seed", "5")
    assert result.exit_code == 0, result.output
    counts = query(platform, "SELECT (SELECT count(*) FROM installations WHERE installation_id LIKE 'clitest-site-%'), "
                             "(SELECT count(*) FROM devices WHERE device_id LIKE 'clitest-dev-%'), "
                             "(SELECT count(*) FROM group_memberships WHERE path <@ 'program.ca_vpp' "
                             " AND installation_id LIKE 'clitest-site-%')")[0]
    assert counts[0] == counts[1] == 300
    assert 100 < counts[2] < 300

    result = run(platform, "token", "create", "--name", "cli-ops", "--scope", "read", "--path", "utility.pge",
                 "--path", "program.ca_vpp")
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("gta_")
    row = query(platform, "SELECT scopes, allowed_paths::text[] AS paths, token_sha256 FROM api_principals "
                          "WHERE name = 'cli-ops'")[0]
    assert (row["scopes"], row["paths"]) == (["read"], ["utility.pge", "program.ca_vpp"])
    assert token.encode() not in bytes(row["token_sha256"])
    result = run(platform, "token", "create", "--name", "x", "--scope", "read", "--path", "utility.pg-e")
    assert result.exit_code == 1 and "'pg-e'" in result.output
