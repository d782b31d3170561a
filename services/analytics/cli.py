"""`gridtwin analytics …`: serve the AnalyticsService; print energy reports, capacity trends and
series as tables; write PNG charts (matplotlib, headless Agg) and CSV / Parquet (pyarrow) exports.

The commands read the database directly (operators on the platform's own machine); remote
clients use the gRPC AnalyticsService with a token. A TARGET is an installation id, or a
hierarchy group path with `--group` (every member at any depth, each in its own time zone).

Tariff files are JSON: {"currency": "EUR", "import_price_per_kwh": 0.32, "export_price_per_kwh":
0.08, "windows": [{"name": "peak", "start": "17:00", "end": "21:00", "import_price_per_kwh": 0.45,
"weekdays": [1, 2, 3, 4, 5]}]}.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from gridtwin.settings import Settings

if TYPE_CHECKING:  # keeps `gridtwin …` startup light
    import pandas as pd

    from services.analytics.capacity import CapacityTrend
    from services.analytics.flows import Flows
    from services.analytics.reader import Site
    from services.analytics.service import Analytics, ChartSeries, EnergyResult
    from services.analytics.tariffs import Tariff

app = typer.Typer(help="Energy analytics: reports, battery capacity and series as tables, PNG charts, CSV and "
                       "Parquet exports (TARGET: an installation id, or a group path with --group). Tariff "
                       "files are JSON, see `services/analytics/cli.py`.", no_args_is_help=True)
console = Console()
T = TypeVar("T")

Target = Annotated[str, typer.Argument(help="Installation id, or a group path with --group")]
Group = Annotated[bool, typer.Option("--group", help="TARGET is a hierarchy group path")]
First = Annotated[str, typer.Option("--from", help="First local date, YYYY-MM-DD")]
End = Annotated[str, typer.Option("--to", help="Local date after the last, YYYY-MM-DD")]
CsvOut = Annotated[Path | None, typer.Option("--csv", help="Write a CSV export here")]
ParquetOut = Annotated[Path | None, typer.Option("--parquet", help="Write a Parquet export here")]
ChartOut = Annotated[Path | None, typer.Option("--chart", help="Write a PNG chart here")]
RESOLUTIONS = {"auto": None, "raw": 0, "1m": 60, "15m": 900, "1h": 3_600, "1d": 86_400}


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]refused[/]: {message}")
    return typer.Exit(1)


def _run(work: Callable[[Analytics], Awaitable[T]]) -> T:
    import asyncpg

    from services.analytics.localtime import ZoneError
    from services.analytics.reader import AnalyticsReader
    from services.analytics.service import Analytics, RangeError
    from services.telemetry.store import init_connection

    settings = Settings()

    async def main() -> T:
        pool = await asyncpg.create_pool(settings.postgres.url, min_size=1, max_size=2, init=init_connection)
        assert pool is not None
        try:
            return await work(Analytics(AnalyticsReader(pool)))
        finally:
            await pool.close()

    try:
        return asyncio.run(main())
    except (RangeError, ZoneError, LookupError) as error:
        raise _fail(str(error)) from None


async def _sites(analytics: Analytics, target: str, group: bool) -> list[Site]:
    if group:
        sites = await analytics.reader.group_sites(target)
        if sites is None:
            raise LookupError(f"group {target!r} does not exist")
        return sites
    sites = await analytics.reader.sites([target])
    if not sites:
        raise LookupError(f"installation {target!r} does not exist")
    return sites


def _dates(first: str, end: str) -> Any:
    from services.analytics.service import LocalDates

    try:
        return LocalDates(dt.date.fromisoformat(first), dt.date.fromisoformat(end))
    except ValueError:
        raise _fail("dates are YYYY-MM-DD") from None


def _tariff(path: Path | None, import_price: float | None, export_price: float) -> Tariff | None:
    from services.analytics.tariffs import TariffError, flat, tariff_from_dict

    try:
        if path is not None:
            return tariff_from_dict(json.loads(path.read_text()))
        if import_price is not None:
            return flat(import_price, export_price)
    except (OSError, json.JSONDecodeError, TariffError) as error:
        raise _fail(f"tariff: {error}") from None
    return None


def _export(frame: pd.DataFrame, csv: Path | None, parquet: Path | None) -> None:
    if csv is not None:
        frame.to_csv(csv, index=False)
        console.print(f"wrote {csv}")
    if parquet is not None:
        frame.to_parquet(parquet, engine="pyarrow", index=False)
        console.print(f"wrote {parquet}")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: files only
    import matplotlib.pyplot as plt

    return plt


def _kwh(wh: float | None) -> str:
    return "–" if wh is None else f"{wh / 1_000:,.2f}"   # None: the signal was not reported


def _money(amount: float | None) -> str:
    return "–" if amount is None else f"{amount:,.2f}"


def _pct(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio * 100:.1f} %"


# ------------------------------------------------------------------ commands

@app.command()
def serve() -> None:
    """Runs the AnalyticsService (gRPC, health, reflection) in the foreground."""
    from gridtwin.app import wiring as services

    settings = Settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.analytics(settings))


@app.command()
def report(target: Target, first: First, end: End, group: Group = False,
           tariff_file: Annotated[Path | None, typer.Option("--tariff", help="Tariff JSON file")] = None,
           import_price: Annotated[float | None, typer.Option(help="Flat import price per kWh")] = None,
           export_price: Annotated[float, typer.Option(help="Flat export price per kWh")] = 0.0,
           csv: CsvOut = None, parquet: ParquetOut = None, chart: ChartOut = None) -> None:
    """Daily totals in local time: energy in and out, ratios, coverage and (with a tariff) cost."""
    range_ = _dates(first, end)
    tariff = _tariff(tariff_file, import_price, export_price)

    async def work(analytics: Analytics) -> EnergyResult:
        return await analytics.energy(await _sites(analytics, target, group), range_, tariff)

    result = _run(work)
    frame = report_frame(result)
    _print_report(target, result, frame)
    _export(frame, csv, parquet)
    if chart is not None:
        report_chart(frame, f"{target} — daily energy ({result.time_zone or 'local days'})", chart)
        console.print(f"wrote {chart}")


def report_frame(result: EnergyResult) -> pd.DataFrame:
    """One row per local day (energy in Wh, ratios as fractions, cost in the tariff's currency);
    empty (None) where a signal was not reported."""
    import pandas as pd

    from services.analytics.flows import CHANNELS

    rows = []
    for d in result.report.days:
        f = d.flows
        row: dict[str, Any] = {
            "date": d.date, "start_unix_ms": d.start_ms, "end_unix_ms": d.end_ms,
            "hours": (d.end_ms - d.start_ms) / 3.6e6,
            **{channel: f.energy_wh(channel) for channel in CHANNELS},   # None: not reported
            "solar_self_consumed_wh": f.solar_self_consumed_wh, "self_consumption_ratio": f.self_consumption_ratio,
            "self_sufficiency_ratio": f.self_sufficiency_ratio, "covered_s": f.covered_s, "coverage": f.coverage,
        }
        if d.cost is not None:
            row.update(net_cost=d.cost.net_cost, no_battery_net_cost=d.cost.no_battery_net_cost,
                       no_solar_no_battery_net_cost=d.cost.no_solar_no_battery_net_cost,
                       battery_savings=d.cost.battery_savings, solar_savings=d.cost.solar_savings)
        rows.append(row)
    return pd.DataFrame(rows)


def _print_report(target: str, result: EnergyResult, frame: pd.DataFrame) -> None:
    costed = result.report.cost is not None
    table = Table(title=f"{target}: {result.installations} installation(s), "
                        f"{result.time_zone or 'each in its own zone'}, rollups {result.resolutions_s} s")
    for column in ("date", "h", "load kWh", "solar kWh", "direct kWh", "batt in", "batt out", "import",
                   "export", "self-cons.", "self-suff.", "coverage", *(("cost", "savings") if costed else ())):
        table.add_column(column, justify="left" if column == "date" else "right")
    for d in result.report.days:
        f = d.flows
        cells = [str(d.date), f"{(d.end_ms - d.start_ms) / 3.6e6:g}", *_energy_cells(f),
                 _pct(f.self_consumption_ratio), _pct(f.self_sufficiency_ratio), _pct(f.coverage)]
        if d.cost is not None:
            cells += [_money(d.cost.net_cost), _money(d.cost.total_savings)]
        table.add_row(*cells)
    t = result.report.total
    total = ["total", f"{t.span_s / 3_600 / max(result.installations, 1):g}", *_energy_cells(t),
             _pct(t.self_consumption_ratio), _pct(t.self_sufficiency_ratio), _pct(t.coverage)]
    c = result.report.cost
    if c is not None:
        total += [_money(c.net_cost), _money(c.total_savings)]
    table.add_section()
    table.add_row(*total, style="bold")
    console.print(table)
    if c is not None:
        console.print(f"cost {c.net_cost:,.2f} (import {c.import_cost:,.2f} − export {c.export_revenue:,.2f}); "
                      f"without battery {_money(c.no_battery_net_cost)}, without battery and solar "
                      f"{_money(c.no_solar_no_battery_net_cost)}: battery saved {_money(c.battery_savings)}, "
                      f"solar {_money(c.solar_savings)}")


def _energy_cells(f: Flows) -> list[str]:
    """load, solar, direct, battery in, out, import, export: "–" where the signal was not reported."""
    return [_kwh(f.energy_wh(channel)) for channel in ("load_wh", "solar_wh", "solar_direct_wh",
                                                       "battery_charge_wh", "battery_discharge_wh",
                                                       "grid_import_wh", "grid_export_wh")]


def report_chart(frame: pd.DataFrame, title: str, path: Path) -> None:
    """Daily consumption by source (direct solar, battery, grid) above, solar by use below."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    x = frame["date"].astype("datetime64[ns]")
    # A channel not reported adds no bar (and no line).
    kwh = frame[["solar_direct_wh", "battery_discharge_wh", "grid_import_wh", "solar_wh", "grid_export_wh"]]
    kwh = kwh.astype(float).fillna(0.0) / 1_000
    other = (kwh["solar_wh"] - kwh["solar_direct_wh"] - kwh["grid_export_wh"]).clip(lower=0)
    top.bar(x, kwh["solar_direct_wh"], label="solar, direct", color="#f2b705")
    top.bar(x, kwh["battery_discharge_wh"], bottom=kwh["solar_direct_wh"], label="battery", color="#2a9d8f")
    top.bar(x, kwh["grid_import_wh"], bottom=kwh["solar_direct_wh"] + kwh["battery_discharge_wh"],
            label="grid import", color="#6c757d")
    top.plot(x, frame["load_wh"].astype(float) / 1_000, color="black", linewidth=0.8, label="consumption")
    top.set_ylabel("kWh / day")
    top.legend(loc="upper left", ncols=4, fontsize=8)
    top.set_title(title)
    bottom.bar(x, kwh["solar_direct_wh"], label="used directly", color="#f2b705")
    bottom.bar(x, other, bottom=kwh["solar_direct_wh"], label="stored (battery)", color="#2a9d8f")
    bottom.bar(x, kwh["grid_export_wh"], bottom=kwh["solar_direct_wh"] + other, label="exported", color="#90be6d")
    bottom.set_ylabel("solar kWh / day")
    bottom.legend(loc="upper left", ncols=3, fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@app.command()
def capacity(installation: Annotated[str, typer.Argument(help="Installation id")], first: First, end: End,
             min_swing_pct: Annotated[float, typer.Option(help="Shallower half-cycles give no estimate")] = 30.0,
             csv: CsvOut = None, parquet: ParquetOut = None, chart: ChartOut = None) -> None:
    """Battery capacity from charge/discharge cycles, its fade and the projection to 80 %."""
    from services.analytics.capacity import DEFAULT_OPTIONS, CapacityOptions

    range_ = _dates(first, end)
    options = CapacityOptions(**{**DEFAULT_OPTIONS.__dict__, "min_swing_pct": min_swing_pct})

    async def work(analytics: Analytics) -> CapacityTrend:
        (site,) = await _sites(analytics, installation, False)
        return await analytics.capacity(site, range_, options)

    trend = _run(work)
    frame = capacity_frame(trend)
    _print_trend(installation, trend)
    _export(frame, csv, parquet)
    if chart is not None:
        capacity_chart(trend, f"{installation} — battery capacity", chart)
        console.print(f"wrote {chart}")


def capacity_frame(trend: CapacityTrend) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([{
        "at_unix_ms": c.at_ms, "at": dt.datetime.fromtimestamp(c.at_ms / 1_000, dt.UTC),
        "capacity_wh": c.capacity_wh, "charge_estimate_wh": c.charge.capacity_wh,
        "discharge_estimate_wh": c.discharge.capacity_wh, "round_trip_efficiency": c.round_trip_efficiency,
        "equivalent_full_cycles": c.equivalent_full_cycles,
    } for c in trend.cycles])


def _print_trend(installation: str, trend: CapacityTrend) -> None:
    table = Table(title=f"{installation}: battery capacity", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    nominal = trend.nominal_wh

    def row(what: str, value: str) -> None:
        table.add_row(what, value)

    row("nominal", "–" if nominal is None else f"{nominal / 1_000:,.2f} kWh")
    row("half-cycles / cycles used", f"{len(trend.half_cycles)} / {len(trend.cycles)}")
    row("equivalent full cycles", f"{trend.equivalent_full_cycles:,.1f}")
    if trend.capacity_wh is not None:
        share = f" ({trend.capacity_wh / nominal * 100:.1f} % of nominal)" if nominal else ""
        row("capacity now (fit)", f"{trend.capacity_wh / 1_000:,.2f} kWh{share}")
    if trend.cycles:
        efficiency = sum(c.round_trip_efficiency for c in trend.cycles) / len(trend.cycles)
        row("round-trip efficiency (mean)", f"{efficiency * 100:.1f} %")
    if trend.by_time is not None:
        r2 = "–" if trend.by_time.r_squared is None else f"{trend.by_time.r_squared:.3f}"
        row("fade per year", f"{trend.by_time.slope:,.0f} Wh ({_pct((trend.fade_pct_per_year or 0) / 100)}), "
                             f"R² {r2}")
    if trend.by_cycle is not None:
        r2 = "–" if trend.by_cycle.r_squared is None else f"{trend.by_cycle.r_squared:.3f}"
        row("fade per cycle", f"{trend.by_cycle.slope:,.2f} Wh, R² {r2}")
    if trend.end_of_life_ms is not None:
        at = dt.datetime.fromtimestamp(trend.end_of_life_ms / 1_000, dt.UTC)
        row("reaches 80 % of nominal", at.date().isoformat())
    console.print(table)


def capacity_chart(trend: CapacityTrend, title: str, path: Path) -> None:
    import numpy as np

    from services.analytics.capacity import YEAR_MS

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5))
    if trend.cycles:
        at = np.array([c.at_ms for c in trend.cycles])
        ax.scatter(at.astype("datetime64[ms]"), [c.capacity_wh / 1_000 for c in trend.cycles], s=6,
                   label="cycle estimate", color="#2a9d8f")
        if trend.by_time is not None:
            end = max(int(at[-1]), trend.end_of_life_ms or 0)
            line = np.array([at[0], end])
            fitted = trend.by_time.intercept + trend.by_time.slope * (line - at[0]) / YEAR_MS
            ax.plot(line.astype("datetime64[ms]"), fitted / 1_000, color="black", linewidth=1, label="linear fit")
    if trend.nominal_wh:
        ax.axhline(trend.nominal_wh / 1_000, color="#6c757d", linestyle=":", label="nominal")
        ax.axhline(0.8 * trend.nominal_wh / 1_000, color="#e63946", linestyle="--", label="80 % of nominal")
    ax.set_ylabel("kWh")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # a home without battery or nominal rating draws nothing
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no charge/discharge cycles in the range", ha="center", transform=ax.transAxes)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@app.command()
def series(target: Target, first: First, end: End, group: Group = False,
           points: Annotated[int, typer.Option(min=3, max=10_000, help="Points per channel")] = 1_000,
           resolution: Annotated[str, typer.Option(help="auto, raw, 1m, 15m, 1h or 1d")] = "auto",
           channel: Annotated[list[str] | None, typer.Option(help="Channels (default: all)")] = None,
           csv: CsvOut = None, parquet: ParquetOut = None, chart: ChartOut = None) -> None:
    """Power series for charts: a resolution from the range, LTTB down to the point budget."""
    from services.telemetry.energy import POWER_FIELDS

    if resolution not in RESOLUTIONS:
        raise _fail(f"resolution: one of {', '.join(RESOLUTIONS)}")
    channels = tuple(channel or POWER_FIELDS)
    if set(channels) - set(POWER_FIELDS):
        raise _fail(f"channels: choose from {', '.join(POWER_FIELDS)}")
    range_ = _dates(first, end)

    async def work(analytics: Analytics) -> ChartSeries:
        return await analytics.series(await _sites(analytics, target, group), range_, points, channels,
                                      RESOLUTIONS[resolution])

    chart_series = _run(work)
    frame = series_frame(chart_series)
    label = {0: "raw samples"}.get(chart_series.resolution_s, f"{chart_series.resolution_s} s rollups")
    console.print(f"{target}: read {chart_series.points_read:,} points ({label}); "
                  + ", ".join(f"{name} {len(ts):,}" for name, (ts, _) in chart_series.channels.items()))
    _export(frame, csv, parquet)
    if chart is not None:
        series_chart(chart_series, f"{target} — {label}, LTTB to {points} points", chart)
        console.print(f"wrote {chart}")


def series_frame(chart_series: ChartSeries) -> pd.DataFrame:
    """Long format: one row per (channel, point)."""
    import pandas as pd

    parts = [pd.DataFrame({"channel": name, "timestamp_unix_ms": ts, "value": values})
             for name, (ts, values) in chart_series.channels.items()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["channel", "timestamp_unix_ms", "value"])


def series_chart(chart_series: ChartSeries, title: str, path: Path) -> None:
    plt = _pyplot()
    power = {k: v for k, v in chart_series.channels.items() if k != "state_of_charge_pct"}
    soc = chart_series.channels.get("state_of_charge_pct")
    fig, ax = plt.subplots(figsize=(12, 5))
    for name, (ts, values) in power.items():
        ax.plot(ts.astype("datetime64[ms]"), values / 1_000, linewidth=0.8, label=name.removesuffix("_power_w"))
    ax.set_ylabel("kW")
    ax.set_xlabel("UTC")
    if soc is not None:
        right = ax.twinx()
        right.plot(soc[0].astype("datetime64[ms]"), soc[1], color="#6c757d", linewidth=0.8, linestyle=":",
                   label="state of charge")
        right.set_ylabel("state of charge %")
        right.set_ylim(0, 100)
        right.legend(loc="upper right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8, ncols=4)
    ax.set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
