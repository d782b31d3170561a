"""What a fault cost: the simulator's ledger against the store, the twins and the commands.

The comparisons are pure functions over plain values (`compare_samples`, `compare_twins`,
`compare_alerts`, `compare_commands`); the readers below them only fetch those values.
"Lost" is something the ledger says was generated (and not refused) that never arrived;
"duplicated" is anything counted more than once: a (device, timestamp) stored twice, a rollup
summing more samples than are stored, a twin that applied more samples than are stored, an alert
raised twice, a command executed twice on a device.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from actors.twin.config import RulesConfig
from actors.twin.model import UNKNOWN_FACTS, AlertEvent, Sample
from actors.twin.twin import TwinState
from actors.twin.view import TwinView
from simulator.ledger import Ledger

# ---------------------------------------------------------------------- samples


@dataclass(frozen=True)
class SampleAudit:
    generated: int
    refused: int
    stored: int
    lost: int            # generated, not refused, not stored
    duplicated: int      # stored more than once, or counted more than once in the rollups
    unexpected: int      # stored but never generated (another run's data would show here)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.unexpected == 0


def compare_samples(generated: Mapping[str, Sequence[int]], refused: Mapping[str, Sequence[tuple[int, str]]],
                    stored: Iterable[tuple[str, int]], rollup_samples: int) -> SampleAudit:
    """`stored`: one (device, timestamp ms) per stored row; `rollup_samples`: the 1-minute
    rollups' sample count, which a replay counted twice would inflate."""
    rows = Counter(stored)
    wanted = {(d, ts) for d, stamps in generated.items() for ts in stamps}
    refused_keys = {(d, ts) for d, items in refused.items() for ts, _ in items}
    expected = wanted - refused_keys
    distinct = set(rows)
    twice = sum(n - 1 for n in rows.values())
    return SampleAudit(
        generated=len(wanted), refused=len(refused_keys), stored=sum(rows.values()),
        lost=len(expected - distinct), duplicated=twice + max(0, rollup_samples - len(distinct)),
        unexpected=len(distinct - wanted))


async def stored_samples(pool: asyncpg.Pool, devices: Sequence[str]) -> list[tuple[str, int]]:
    rows = await pool.fetch("SELECT device_id, (extract(epoch FROM ts) * 1000)::bigint AS ts_ms "
                            "FROM telemetry_samples WHERE device_id = ANY($1)", list(devices))
    return [(r["device_id"], r["ts_ms"]) for r in rows]


async def rollup_sample_count(pool: asyncpg.Pool, installations: Sequence[str]) -> int:
    return int(await pool.fetchval("SELECT coalesce(sum(sample_count), 0) FROM telemetry_rollups "
                                   "WHERE resolution_s = 60 AND installation_id = ANY($1)", list(installations)))


async def audit_samples(pool: asyncpg.Pool, ledger: Ledger, installations: Sequence[str],
                        settle_timeout_s: float = 120.0) -> SampleAudit:
    """Waits until the store holds every expected sample (or the timeout), then compares."""
    devices = list(ledger.generated)
    expected = ledger.generated_total() - ledger.refused_total()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_timeout_s
    while loop.time() < deadline:
        count = await pool.fetchval("SELECT count(*) FROM telemetry_samples WHERE device_id = ANY($1)", devices)
        rollups = await rollup_sample_count(pool, installations)
        if count >= expected and rollups >= expected:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)   # late duplicates, if any, would land now
    return compare_samples(ledger.generated, ledger.refused, await stored_samples(pool, devices),
                           await rollup_sample_count(pool, installations))


# ---------------------------------------------------------------------- twins


@dataclass(frozen=True)
class TwinAudit:
    twins: int
    missing: int          # installations with stored samples but no twin
    under_applied: int    # twins that applied fewer samples than are stored (a loss)
    over_applied: int     # twins that applied more samples than are stored (applied twice)
    model_mismatches: int  # twins whose state differs from the pure model over the stored samples

    @property
    def ok(self) -> bool:
        return not (self.missing or self.under_applied or self.over_applied or self.model_mismatches)


@dataclass(frozen=True)
class TwinFigures:
    """What the audit compares of a twin: samples applied, the newest one, integrated energy."""

    applied: int
    last_ts_ms: int
    net_out_wh: float

    @staticmethod
    def of(view: TwinView) -> TwinFigures:
        return TwinFigures(view.counts.applied, view.reported.timestamp_unix_ms, view.energy.net_out_wh)


StoredRow = tuple[str, int, float, float, float, float, float]


def model_twins(samples: Mapping[str, Sequence[StoredRow]], rules: Mapping[str, Mapping[str, Any]],
                now_ms: int) -> tuple[dict[str, TwinFigures], dict[str, AlertEvent]]:
    """The pure twin over each installation's stored samples, in timestamp order: what a twin
    that applied every sample exactly once must show. `samples`: installation → (device, ts,
    site, battery, solar, load, soc). Also the last event of every alert."""
    config = RulesConfig.defaults().with_overrides(dict(rules))
    out: dict[str, TwinFigures] = {}
    last: dict[str, AlertEvent] = {}
    for installation_id, rows in samples.items():
        twin = TwinState(installation_id, UNKNOWN_FACTS, config)
        events: list[AlertEvent] = []
        for device, ts, site, battery, solar, load, soc in sorted(rows, key=lambda r: r[1]):
            twin.apply(Sample(device, ts, site, battery, solar, load, soc, 1), now_ms, events)
        for e in events:
            last[e.alert.alert_id] = e
        out[installation_id] = TwinFigures(twin.reported.applied, twin.reported.last_ts_ms, twin.battery.net_out_wh)
    return out, last


def compare_twins(stored_counts: Mapping[str, int], twins: Mapping[str, TwinFigures | None],
                  model: Mapping[str, TwinFigures]) -> TwinAudit:
    """`twins`: what each twin shows (None: no twin); `model`: the pure twin over the store."""
    missing = under = over = mismatched = 0
    for installation_id, count in stored_counts.items():
        twin = twins.get(installation_id)
        if twin is None:
            missing += 1
            continue
        under += twin.applied < count
        over += twin.applied > count
        reference = model.get(installation_id)
        if reference is not None and (
                twin.applied != reference.applied or twin.last_ts_ms != reference.last_ts_ms
                or abs(twin.net_out_wh - reference.net_out_wh) > 1e-6 * max(1.0, abs(reference.net_out_wh))):
            mismatched += 1
    return TwinAudit(len(twins), missing, under, over, mismatched)


@dataclass(frozen=True)
class AlertAudit:
    expected: int
    cleared: int       # of the expected, how many the model cleared (the lifecycle ran to its end)
    stored: int
    lost: int          # the model raised it, the store does not have it
    duplicated: int    # stored but the model never raised it (e.g. raised twice under two ids)
    wrong_state: int   # open vs cleared, or first seen, differ

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong_state)


def compare_alerts(expected: Mapping[str, AlertEvent], stored: Mapping[str, tuple[bool, int]]) -> AlertAudit:
    """`stored`: alert id → (cleared, first seen ms)."""
    want = {i: (e.alert.cleared_ms is not None, e.alert.first_seen_ms) for i, e in expected.items()}
    lost = len(set(want) - set(stored))
    extra = len(set(stored) - set(want))
    wrong = sum(1 for i in set(want) & set(stored) if want[i] != stored[i])
    cleared = sum(1 for is_cleared, _ in want.values() if is_cleared)
    return AlertAudit(len(want), cleared, len(stored), lost, extra, wrong)


async def stored_rows_by_installation(pool: asyncpg.Pool, installations: Sequence[str]) -> dict[str, list[tuple]]:
    rows = await pool.fetch(
        "SELECT installation_id, device_id, (extract(epoch FROM ts) * 1000)::bigint AS ts_ms, site_power_w, "
        "battery_power_w, solar_power_w, load_power_w, state_of_charge_pct FROM telemetry_samples "
        "WHERE installation_id = ANY($1)", list(installations))
    out: dict[str, list[tuple]] = {}
    for r in rows:
        out.setdefault(r["installation_id"], []).append(
            (r["device_id"], r["ts_ms"], r["site_power_w"], r["battery_power_w"], r["solar_power_w"],
             r["load_power_w"], r["state_of_charge_pct"]))
    return out


async def stored_alerts(pool: asyncpg.Pool, installations: Sequence[str]) -> dict[str, tuple[bool, int]]:
    rows = await pool.fetch("SELECT alert_id, cleared_at IS NOT NULL AS cleared, "
                            "(extract(epoch FROM first_seen) * 1000)::bigint AS first_ms FROM twin_alerts "
                            "WHERE installation_id = ANY($1) AND rule <> 'telemetry_stale'", list(installations))
    return {r["alert_id"]: (r["cleared"], r["first_ms"]) for r in rows}


# ---------------------------------------------------------------------- commands


@dataclass(frozen=True)
class CommandAudit:
    submitted: int
    acknowledged: int
    lost: int               # never acknowledged (still sent/queued at the end, failed or expired)
    executed_twice: int     # devices that executed more commands than they were sent distinct ones
    redelivered: int        # deliveries beyond the first (harmless: answered from memory)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.executed_twice == 0


def compare_commands(submitted: int, acknowledged: int, executions: Mapping[str, int],
                     received: Mapping[str, Sequence[str]]) -> CommandAudit:
    """`executions`: device → commands it executed (the simulator counts); `received`: device →
    the command ids it got, every delivery."""
    twice = sum(1 for device, n in executions.items() if n > len(set(received.get(device, ()))))
    redelivered = sum(len(ids) - len(set(ids)) for ids in received.values())
    return CommandAudit(submitted, acknowledged, submitted - acknowledged, twice, redelivered)
