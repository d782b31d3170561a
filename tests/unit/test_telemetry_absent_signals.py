"""Absent signals from the device protocol to the rollups and the analytics: never read as 0."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from gridtwin.api.device.v1 import device_pb2 as pb
from services.analytics.flows import CHANNELS, Flows
from services.analytics.localtime import local_days, zone
from services.analytics.summary import BucketEnergy, summarize
from services.analytics.tariffs import Tariff
from services.telemetry.api import _rollup_point, energy_totals
from services.telemetry.energy import ENERGY_FIELDS, POWER_FIELDS, Samples, energy_by_bucket, rollup_deltas
from services.telemetry.signals import reports_any, values

UTC = zone("UTC")
E = {name: i for i, name in enumerate(ENERGY_FIELDS)}
P = {name: i for i, name in enumerate(POWER_FIELDS)}
NAN = math.nan


def test_presence_is_read_from_the_protocol_and_an_explicit_zero_is_reported() -> None:
    assert values(pb.Sample(site_power_w=27, battery_power_w=-990, solar_power_w=1840)) == (
        27.0, -990.0, 1840.0, None, None)
    assert values(pb.Sample(site_power_w=0.0, state_of_charge_pct=-0.0)) == (0.0, None, None, None, 0.0)
    assert math.isnan(values(pb.Sample(load_power_w=NAN))[3])
    assert not reports_any(pb.Sample(timestamp_unix_ms=5, grid_status=1)) and reports_any(pb.Sample(load_power_w=0))


def _samples(rows: list[tuple[int, float, float, float, float, float]]) -> Samples:
    n = len(rows)
    table = np.array(rows, dtype=np.float64)
    return Samples(np.zeros(n, np.int64), np.zeros(n, np.int64), table[:, 0].astype(np.int64), table[:, 1:])


def test_rollups_count_and_integrate_only_what_was_reported() -> None:
    # One device, 10 s apart, in one minute: site/battery/solar always; load in the first three;
    # the state of charge never.
    s = _samples([(0, 100.0, -500.0, 1_000.0, 600.0, NAN), (10_000, 100.0, -500.0, 1_000.0, 600.0, NAN),
                  (20_000, 100.0, -500.0, 1_000.0, 600.0, NAN), (30_000, 100.0, -500.0, 1_000.0, NAN, NAN),
                  (40_000, 100.0, -500.0, 1_000.0, NAN, NAN)])
    [minute, *_] = rollup_deltas(s, Samples.empty(), max_gap_s=300)
    assert minute.count.tolist() == [5]
    assert minute.counts[0].tolist() == [5, 5, 5, 3, 0]                    # per signal
    assert minute.sums[0, P["load_power_w"]] == pytest.approx(1_800.0)     # a mean of 600 W, not 360 W
    assert math.isnan(minute.mins[0, P["state_of_charge_pct"]]) and math.isnan(minute.maxs[0, P["state_of_charge_pct"]])
    energy = minute.energy[0]
    assert energy[E["covered_s"]] == pytest.approx(40.0)
    assert energy[E["load_covered_s"]] == pytest.approx(20.0)              # only 0→10→20 s had load at both ends
    assert energy[E["load_wh"]] == pytest.approx(600.0 * 20 / 3_600)
    assert energy[E["solar_wh"]] == pytest.approx(1_000.0 * 40 / 3_600)
    assert energy[E["solar_direct_wh"]] == pytest.approx(600.0 * 20 / 3_600)   # needs solar and load
    assert energy[E["battery_charge_wh"]] == pytest.approx(500.0 * 40 / 3_600)
    assert energy[E["site_covered_s"]] == energy[E["battery_covered_s"]] == energy[E["solar_covered_s"]] == 40.0


def test_a_device_without_load_has_no_load_energy_rather_than_zero() -> None:
    three = _samples([(t * 1_000, 27.0, -990.0, 1_840.0, NAN, NAN) for t in range(0, 3_600, 10)])
    table = energy_by_bucket(three, max_gap_s=300)
    assert table.values[:, E["load_covered_s"]].sum() == 0 and table.values[:, E["load_wh"]].sum() == 0
    flows = Flows.from_energy(table.values.sum(axis=0), 3_600)
    assert flows.energy_wh("load_wh") is None and flows.energy_wh("solar_direct_wh") is None
    assert flows.energy_wh("solar_wh") == pytest.approx(1_840.0 * 3_590 / 3_600)
    assert flows.self_sufficiency_ratio is None and flows.direct_use_ratio is None
    assert flows.self_consumption_ratio is not None        # solar and site were reported
    tariff = Tariff(0.30, 0.05)
    report = summarize(BucketEnergy(table.bucket_ms, table.values), 0, 86_400_000,
                       local_days(dt.date(1970, 1, 1), dt.date(1970, 1, 2), UTC), UTC, tariff)
    assert report.cost is not None and report.cost.net_cost == pytest.approx(27.0 * 3_590 / 3.6e6 * 0.30)
    assert report.cost.no_solar_no_battery_net_cost is None and report.cost.total_savings is None
    full = Flows(solar_wh=10_000, load_wh=8_000, grid_import_wh=2_000, grid_export_wh=4_000, solar_direct_wh=3_000)
    assert all(full.energy_wh(c) is not None for c in CHANNELS if "battery" not in c)
    assert full.energy_wh("battery_charge_wh") is None       # no energy and no coverage: not reported


def test_rollup_points_leave_unreported_signals_and_channels_unset() -> None:
    row: dict[str, float] = {"bucket": 60_000_000, "sample_count": 4}
    for f in POWER_FIELDS:
        row[f"{f}_sum"], row[f"{f}_count"] = 0.0, 0
    row["site_power_w_sum"], row["site_power_w_count"] = 300.0, 3
    row.update({f: 0.0 for f in ENERGY_FIELDS})
    row.update(site_covered_s=30.0, covered_s=40.0, grid_import_wh=2.5)
    point = _rollup_point(row)  # type: ignore[arg-type]
    assert point.site_power_w == 100.0 and point.sample_count == 4           # mean over the three that had it
    assert not point.HasField("load_power_w") and not point.HasField("state_of_charge_pct")
    assert point.energy.HasField("grid_import_wh") and point.energy.HasField("grid_export_wh")
    assert not point.energy.HasField("load_wh") and not point.energy.HasField("solar_direct_wh")
    assert energy_totals(row).covered_s == 40.0  # type: ignore[arg-type]
