"""Devices that report only some signals, end to end on the real components: websocket gateway →
broker → ingest → Postgres (samples, rollups) → twin shards on Ray → alerts in Postgres and on
the alerts topic, and the analytics over the stored rollups.

The three-signal device is the Powerwall monitor's: site, battery and solar power from a real
gateway response (../shared/data/powerwall), no load and no state of charge. A fourth signal read
as zero would put a power_balance alert on its whole stream; here an unset field is "not
reported" everywhere: NULL in the store, left out of the rollups' means and energy, None in the
twin, and the rules that need it do not run.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from websockets.asyncio.client import connect

from actors.runtime.store import TwinStore
from actors.twin.config import RulesConfig
from actors.twin.model import AlertEvent, InstallationFacts, Sample
from actors.twin.twin import TwinState
from gridtwin import unixtime
from gridtwin.api.device.v1 import device_pb2 as pb
from services.access.credentials import CredentialDirectory, DeviceRegistration, register_devices
from services.analytics.reader import AnalyticsReader, Site
from services.analytics.service import Analytics, Instants
from services.telemetry.gateway import Gateway
from services.telemetry.ingest import IngestConsumer
from services.telemetry.store import TelemetryStore
from tests.data import POWERWALL
from tests.integration.twins_support import RULES, Twins, topic_alerts, until

pytestmark = pytest.mark.integration

AGGREGATES = json.loads((POWERWALL / "pypowerwall__proxy_web_bogus_api.meters.aggregates.json").read_text())
SITE_W = AGGREGATES["site"]["instant_power"]         # 27 W
BATTERY_W = AGGREGATES["battery"]["instant_power"]   # -990 W
SOLAR_W = AGGREGATES["solar"]["instant_power"]       # 1840 W
NOMINAL_WH = 500.0   # a small battery, so that "more than it holds" takes minutes, not hours


def jitter(k: int) -> float:
    return (k % 7) * 0.25   # real meters never repeat a reading exactly (no stuck-sensor alert)


def solar_stream(start_ms: int) -> list[pb.Sample]:
    """Three signals at 1 Hz: normal, then 20 s of negative solar (-60 W), then normal again."""
    out = []
    for k in range(120):
        solar = -60.0 - jitter(k) if 40 <= k < 60 else SOLAR_W + jitter(k)
        out.append(pb.Sample(timestamp_unix_ms=start_ms + k * 1_000, site_power_w=SITE_W + jitter(k),
                             battery_power_w=BATTERY_W - jitter(k), solar_power_w=solar,
                             grid_status=pb.GRID_STATUS_CONNECTED))
    return out


def energy_stream(start_ms: int) -> list[pb.Sample]:
    """Three signals every 10 s: idle, 10 min discharging 5 kW from a 500 Wh battery (833 Wh, more
    than it can hold), then charging 5 kW."""
    out = []
    for k in range(110):
        battery = 0.0 if k < 5 else (5_000.0 if k < 65 else -5_000.0)
        battery += jitter(k)
        out.append(pb.Sample(timestamp_unix_ms=start_ms + k * 10_000, site_power_w=300.0 - battery,
                             battery_power_w=battery, solar_power_w=0.5 + jitter(k)))
    return out


def export_stream(start_ms: int) -> list[pb.Sample]:
    """Site and solar only (no battery signal at all): 2 kW leave while the panels make 500 W —
    energy from a source that does not report — for 45 s, then the home imports again."""
    out = []
    for k in range(60):
        site = -2_000.0 - jitter(k) if k < 45 else 300.0 + jitter(k)
        out.append(pb.Sample(timestamp_unix_ms=start_ms + k * 1_000, site_power_w=site,
                             solar_power_w=500.0 + jitter(k)))
    return out


async def stream_device(url: str, device_id: str, credential: str, samples: list[pb.Sample], per_batch: int) -> None:
    """A device written from the contract: Hello, then batches with increasing sequence numbers,
    each acknowledged before the next."""
    async with connect(url) as ws:
        await ws.send(pb.DeviceFrame(hello=pb.Hello(device_id=device_id, credential=credential,
                                                    protocol_version=1)).SerializeToString())
        reply = pb.CloudFrame()
        reply.ParseFromString(await ws.recv())
        assert reply.WhichOneof("body") == "hello_reply"
        for seq, lo in enumerate(range(0, len(samples), per_batch), start=1):
            batch = pb.TelemetryBatch(sequence=seq, samples=samples[lo:lo + per_batch])
            await ws.send(pb.DeviceFrame(telemetry=batch).SerializeToString())
            ack = pb.CloudFrame()
            ack.ParseFromString(await ws.recv())
            assert ack.WhichOneof("body") == "ack" and ack.ack.sequence == seq
            assert ack.ack.accepted_samples == len(batch.samples) and not ack.ack.rejections


DEVICES = {  # installation → (device, credential, stream, samples per batch)
    "pw-solar": ("pw-solar-gw", "c-solar", solar_stream, 15),
    "pw-energy": ("pw-energy-gw", "c-energy", energy_stream, 10),
    "pw-export": ("pw-export-gw", "c-export", export_stream, 12),
}


async def _stored_alerts(pool: asyncpg.Pool) -> dict[tuple[str, str], list[tuple[str, str]]]:
    rows = await pool.fetch("SELECT installation_id, rule, alert_id, state FROM twin_alerts ORDER BY alert_id")
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for r in rows:
        out.setdefault((r["installation_id"], r["rule"]), []).append((r["alert_id"], r["state"]))
    return out


async def test_devices_reporting_some_signals_through_the_whole_platform(twins: Twins, clean_db: asyncpg.Pool) -> None:
    t, pool = twins, clean_db
    await register_devices(pool, [DeviceRegistration(device, installation, credential)
                                  for installation, (device, credential, _, _) in DEVICES.items()])
    await pool.execute("UPDATE installations SET battery_nominal_energy_wh = $1, time_zone = 'UTC' "
                       "WHERE installation_id = ANY($2::text[])", NOMINAL_WH, list(DEVICES))
    now_ms = unixtime.now_ms()
    start_ms = (now_ms - 1_300_000) // 60_000 * 60_000          # whole minutes: the rollups line up
    streams = {i: make(start_ms) for i, (_, _, make, _) in DEVICES.items()}
    gateway = Gateway(t.settings.gateway, t.settings.kafka, CredentialDirectory(pool))
    store = TelemetryStore(pool, t.settings.ingest.max_gap_s)
    async with gateway, IngestConsumer(t.settings.ingest, t.settings.kafka, store, t.runtime.router):
        url = f"ws://127.0.0.1:{gateway.port}"
        await asyncio.gather(*(stream_device(url, device, credential, streams[i], per_batch)
                               for i, (device, credential, _, per_batch) in DEVICES.items()))

        async def applied() -> bool:
            views = [await t.runtime.router.view(i) for i in DEVICES]
            return all(v is not None and v.counts.applied == len(streams[i])
                       for i, v in zip(DEVICES, views, strict=True))
        await until(applied, 90)
        await t.runtime.router.flush()

    # ---- the stored rows hold NULL for what was not reported
    rows = await pool.fetch(
        "SELECT installation_id, count(*) AS n, count(site_power_w) AS site, count(battery_power_w) AS battery, "
        "count(solar_power_w) AS solar, count(load_power_w) AS load, count(state_of_charge_pct) AS soc "
        "FROM telemetry_samples GROUP BY installation_id")
    counts = {r["installation_id"]: (r["n"], r["site"], r["battery"], r["solar"], r["load"], r["soc"]) for r in rows}
    assert counts["pw-solar"] == (120, 120, 120, 120, 0, 0)
    assert counts["pw-energy"] == (110, 110, 110, 110, 0, 0)
    assert counts["pw-export"] == (60, 60, 0, 60, 0, 0)

    # ---- rollups at every resolution: unreported signals count no samples and cover no seconds
    for resolution_s in (60, 900, 3_600, 86_400):
        r = await pool.fetchrow(
            "SELECT sum(sample_count) AS n, sum(site_power_w_count) AS site, sum(load_power_w_count) AS load, "
            "sum(state_of_charge_pct_count) AS soc, bool_and(load_power_w_min IS NULL) AS no_load_min, "
            "sum(load_wh) AS load_wh, sum(load_covered_s) AS load_s, sum(solar_covered_s) AS solar_s, "
            "sum(covered_s) AS covered_s, sum(site_power_w_sum) AS site_sum "
            "FROM telemetry_rollups WHERE installation_id = 'pw-solar' AND resolution_s = $1", resolution_s)
        assert (r["n"], r["site"], r["load"], r["soc"]) == (120, 120, 0, 0), resolution_s
        assert r["no_load_min"] and r["load_wh"] == 0 and r["load_s"] == 0
        assert r["solar_s"] == pytest.approx(119.0) and r["covered_s"] == pytest.approx(119.0)
        assert r["site_sum"] / r["site"] == pytest.approx(SITE_W + sum(jitter(k) for k in range(120)) / 120)
    battery = await pool.fetchval("SELECT sum(battery_power_w_count) FROM telemetry_rollups "
                                  "WHERE installation_id = 'pw-export' AND resolution_s = 60")
    assert battery == 0

    # ---- the analytics say "not reported", not 0
    analytics = Analytics(AnalyticsReader(pool))
    window = Instants(start_ms, start_ms + 30 * 60_000)
    solar_site = [Site("pw-solar", "UTC", NOMINAL_WH)]
    result = await analytics.energy(solar_site, window, None)
    total = result.report.total
    assert total.energy_wh("load_wh") is None and total.energy_wh("solar_direct_wh") is None
    assert total.self_sufficiency_ratio is None and total.direct_use_ratio is None
    assert total.energy_wh("battery_charge_wh") == pytest.approx(990.0 * 119 / 3_600, rel=0.01)
    assert 98 * SOLAR_W / 3_600 < total.energy_wh("solar_wh") < 100 * SOLAR_W / 3_600   # type: ignore[operator]
    assert total.solar_covered_s == pytest.approx(119.0) and total.load_covered_s == 0
    export_total = (await analytics.energy([Site("pw-export", "UTC")], window, None)).report.total
    assert export_total.energy_wh("battery_discharge_wh") is None and export_total.energy_wh("grid_export_wh")
    chart = await analytics.series(solar_site, window, 100, ("load_power_w", "site_power_w", "state_of_charge_pct"))
    assert len(chart.channels["load_power_w"][0]) == 0 and len(chart.channels["state_of_charge_pct"][0]) == 0
    assert len(chart.channels["site_power_w"][0]) > 0

    # ---- the twins: no power_balance anywhere; each condition one alert, which cleared
    views = {i: await t.runtime.router.view(i) for i in DEVICES}
    for installation, view in views.items():
        # (ignored: a twin activated by a batch replays the journal, which holds that batch already)
        assert view is not None and view.counts.applied == len(streams[installation])
        assert view.counts.rejected == 0
        assert view.reported.load_power_w is None and view.reported.state_of_charge_pct is None
        assert view.alerts == ()                                     # all cleared by the end
    assert views["pw-export"].reported.battery_power_w is None    # type: ignore[index]
    assert set(views["pw-solar"].reported.last_reported) == {    # type: ignore[index]
        "site_power_w", "battery_power_w", "solar_power_w"}
    stored = await _stored_alerts(pool)
    assert set(stored) == {("pw-solar", "solar_negative"), ("pw-energy", "battery_energy_balance"),
                           ("pw-export", "export_without_battery")}
    for key, alerts in stored.items():
        assert len(alerts) == 1 and alerts[0][1] == "cleared", key     # one alert, stayed one, cleared
    published = await topic_alerts(t.settings)
    assert {a.alert_id for a in published} == {alerts[0][0] for alerts in stored.values()}
    assert all(a.rule != "power_balance" for a in published)
    last = {a.alert_id: a for a in published}
    assert all(a.state == 3 for a in last.values())                   # ALERT_STATE_CLEARED on the topic too

    # ---- a twin activated from the journal reads the NULLs as not reported, as the live one did
    since = {i: start_ms - 1 for i in DEVICES}
    replayed = await TwinStore(t.pool).replay(since, 10_000)
    assert len(replayed) == sum(len(s) for s in streams.values())
    assert {row[6] for row in replayed} == {None} and {row[7] for row in replayed} == {None}   # load, SOC
    config = RulesConfig.defaults().with_overrides(RULES)
    for installation in DEVICES:
        twin = TwinState(installation, InstallationFacts(battery_nominal_energy_wh=NOMINAL_WH), config)
        events: list[AlertEvent] = []
        for _, device, ts, site, battery_w, solar, load, soc, grid in (r for r in replayed if r[0] == installation):
            twin.apply(Sample(device, ts, site, battery_w, solar, load, soc, grid), now_ms, events)
        view = views[installation]
        assert view is not None
        assert twin.reported.applied == view.counts.applied
        assert twin.battery.net_out_wh == pytest.approx(view.energy.net_out_wh)
        assert {e.alert.alert_id for e in events} == {alerts[0][0] for (i, _), alerts in stored.items()
                                                      if i == installation}
        assert twin.view(now_ms).reported.last_reported == view.reported.last_reported
