"""`gridtwin analytics …`: energy reports, capacity trends and series from the AnalyticsService
(read scope), as tables, JSON or CSV on stdout, PNG charts (matplotlib, headless Agg) and
CSV / Parquet (pyarrow) files; and the service process itself (`serve`).

A TARGET is an installation id, or a hierarchy group path with `--group` (every member at any
depth, each in its own time zone). Dates are local calendar dates, the last one excluded.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gridtwin.app.cli import client, output
from gridtwin.app.cli.errors import USAGE, CliError
from gridtwin.app.cli.output import Format, OutputOption
from gridtwin.settings import Settings

if TYPE_CHECKING:  # keeps `gridtwin …` startup light
    import pandas as pd

TARIFF_HELP = """Tariff file (--tariff), JSON. Prices per kWh in its currency;
time-of-use windows in local wall-clock time override the flat prices
(the first that matches wins; an end not after its start wraps past
midnight; weekdays: ISO, 1 = Monday; months 1-12; both optional):

  {"currency": "EUR", "import_price_per_kwh": 0.32,
   "export_price_per_kwh": 0.08,
   "windows": [{"name": "peak", "start": "17:00", "end": "21:00",
                "import_price_per_kwh": 0.45, "export_price_per_kwh": 0.10,
                "weekdays": [1, 2, 3, 4, 5], "months": [6, 7, 8]}]}"""

app = typer.Typer(help="Energy analytics (AnalyticsService): daily energy reports with cost under a tariff, "
                       "battery capacity and power series as tables, JSON or CSV, PNG charts and CSV / Parquet "
                       "files. TARGET: an installation id, or a group path with --group.", no_args_is_help=True)

Target = Annotated[str, typer.Argument(help="Installation id, or a group path with --group")]
Group = Annotated[bool, typer.Option("--group", help="TARGET is a hierarchy group path")]
First = Annotated[str, typer.Option("--from", help="First local date, YYYY-MM-DD")]
End = Annotated[str, typer.Option("--to", help="Local date after the last, YYYY-MM-DD")]
CsvOut = Annotated[Path | None, typer.Option("--csv", help="Write a CSV export here")]
ParquetOut = Annotated[Path | None, typer.Option("--parquet", help="Write a Parquet export here")]
ChartOut = Annotated[Path | None, typer.Option("--chart", help="Write a PNG chart here")]
RESOLUTIONS = {"auto": "RESOLUTION_AUTO", "raw": "RESOLUTION_RAW", "1m": "RESOLUTION_ONE_MINUTE",
               "15m": "RESOLUTION_FIFTEEN_MINUTES", "1h": "RESOLUTION_ONE_HOUR", "1d": "RESOLUTION_ONE_DAY"}
RESOLUTION_LABELS = {"RESOLUTION_RAW": "raw samples", "RESOLUTION_ONE_MINUTE": "1 min rollups",
                     "RESOLUTION_FIFTEEN_MINUTES": "15 min rollups", "RESOLUTION_ONE_HOUR": "1 h rollups",
                     "RESOLUTION_ONE_DAY": "1 d rollups", "RESOLUTION_AUTO": "rollups"}
ROLLUP_LABELS = {0: "raw samples", 60: "1 min", 900: "15 min", 3_600: "1 h", 86_400: "1 d"}
ENERGY_CHANNELS = ("battery_charge_wh", "battery_discharge_wh", "solar_wh", "load_wh", "grid_import_wh",
                   "grid_export_wh", "solar_direct_wh")
COST_FIELDS = ("net_cost", "no_battery_net_cost", "no_solar_no_battery_net_cost", "battery_savings",
               "solar_savings", "total_savings")


def _target(target: str, group: bool) -> Any:
    from gridtwin.api.analytics.v1 import analytics_pb2 as pb

    return pb.Target(group_path=target) if group else pb.Target(installation_id=target)


def _dates(first: str, end: str) -> Any:
    from gridtwin.api.analytics.v1 import analytics_pb2 as pb

    try:
        if dt.date.fromisoformat(first) >= dt.date.fromisoformat(end):
            raise CliError(f"--to {end} must be after --from {first}", USAGE)
    except ValueError:
        raise CliError("--from and --to are dates, YYYY-MM-DD", USAGE) from None
    return pb.TimeRange(dates=pb.LocalDateRange(first_date=first, end_date=end))


def _tariff(path: Path | None, import_price: float | None, export_price: float) -> Any:
    """The tariff of the file (checked here, so a mistake names the file) or the flat prices."""
    from gridtwin.api.analytics.v1 import analytics_pb2 as pb
    from services.analytics.tariffs import TariffError, flat, tariff_from_dict, validate

    try:
        if path is not None:
            tariff = tariff_from_dict(json.loads(path.read_text()))
        elif import_price is not None:
            tariff = flat(import_price, export_price)
        else:
            return None
        validate(tariff)
    except (OSError, json.JSONDecodeError, TariffError, AttributeError) as error:
        raise CliError(f"tariff {path or ''}: {error} (format: gridtwin analytics report --help)", USAGE) from None
    return pb.Tariff(currency=tariff.currency, import_price_per_kwh=tariff.import_price_per_kwh,
                     export_price_per_kwh=tariff.export_price_per_kwh, windows=[
                         pb.TouWindow(start_minute=w.start_minute, end_minute=w.end_minute,
                                      import_price_per_kwh=w.import_price_per_kwh,
                                      export_price_per_kwh=w.export_price_per_kwh,
                                      weekdays=sorted(w.weekdays), months=sorted(w.months), name=w.name)
                         for w in tariff.windows])


def _service() -> Any:
    from gridtwin.api.analytics.v1 import analytics_pb2_grpc as pb_grpc

    return pb_grpc.AnalyticsServiceStub


def _export(frame: pd.DataFrame, csv: Path | None, parquet: Path | None) -> None:
    if csv is not None:
        frame.to_csv(csv, index=False)
        output.note(f"wrote {csv}")
    if parquet is not None:
        frame.to_parquet(parquet, engine="pyarrow", index=False)
        output.note(f"wrote {parquet}")


def _stdout(frame: pd.DataFrame, fmt: Format) -> None:
    """The frame as JSON records or CSV on stdout (tables are printed by each command)."""
    if fmt is Format.json:
        import pandas as pd

        # None (not NaN, not valid JSON) where a signal was not reported; dates as YYYY-MM-DD.
        records = frame.astype(object).where(pd.notna(frame), None).to_dict(orient="records")
        print(json.dumps(records, indent=2, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))
    elif fmt is Format.csv:
        print(frame.to_csv(index=False), end="")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: files only
    import matplotlib.pyplot as plt

    return plt


def _opt(message: Any, name: str) -> float | None:
    """An optional field: None when unset (the signal was not reported), never 0."""
    return getattr(message, name) if message.HasField(name) else None


def _kwh(wh: float | None) -> str:
    return "–" if wh is None else f"{wh / 1_000:,.2f}"   # None: the signal was not reported


def _money(amount: float | None) -> str:
    return "–" if amount is None else f"{amount:,.2f}"


def _pct(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio * 100:.1f} %"


def _rollups(resolutions_s: Any) -> str:
    return ", ".join(dict.fromkeys(ROLLUP_LABELS.get(r, f"{r} s") for r in resolutions_s)) or "none"


def _no_data(target: str, first: str, end: str) -> None:
    output.note(f"no data in this range: {target} reported no telemetry from {first} to {end} "
                "(local dates, the last excluded)")


# ------------------------------------------------------------------ commands

@app.command()
def serve() -> None:
    """Runs the AnalyticsService (gRPC, health, reflection) in the foreground."""
    from gridtwin.app import wiring as services

    settings = Settings()
    services.configure(settings)
    services.run_until_signalled(lambda: services.analytics(settings))


@app.command(help="Daily totals in local time: energy in and out, self-consumption and\n"
                  "self-sufficiency, data coverage and (with a tariff) cost and savings.\n\n\b\n" + TARIFF_HELP)
def report(target: Target, first: First, end: End, group: Group = False,
           tariff_file: Annotated[Path | None, typer.Option("--tariff", help="Tariff JSON file (format above)")] = None,
           import_price: Annotated[float | None, typer.Option(help="Flat import price per kWh")] = None,
           export_price: Annotated[float, typer.Option(help="Flat export price per kWh")] = 0.0,
           fmt: OutputOption = Format.table,
           csv: CsvOut = None, parquet: ParquetOut = None, chart: ChartOut = None) -> None:
    from gridtwin.api.analytics.v1 import analytics_pb2 as pb

    request = pb.EnergyReportRequest(target=_target(target, group), range=_dates(first, end))
    tariff = _tariff(tariff_file, import_price, export_price)
    if tariff is not None:
        request.tariff.CopyFrom(tariff)
    with client.api("analytics") as api:
        result = api.call(api_stub(api).GetEnergyReport, request, timeout_s=300)
    if result.total.covered_s == 0:
        _no_data(target, first, end)
        if fmt is not Format.table:
            _stdout(report_frame(pb.EnergyReport()), fmt)
        return
    frame = report_frame(result)
    if fmt is Format.table:
        _print_report(target, result)
    else:
        _stdout(frame, fmt)
    _export(frame, csv, parquet)
    if chart is not None:
        report_chart(frame, f"{target} — daily energy ({result.time_zone or 'local days'})", chart)
        output.note(f"wrote {chart}")


def api_stub(api: client.Api) -> Any:
    return _service()(api.channel)


def report_frame(result: Any) -> pd.DataFrame:
    """One row per local day (energy in Wh, ratios as fractions, cost in the tariff's currency);
    empty (None) where a signal was not reported."""
    import pandas as pd

    rows = []
    for d in result.days:
        f = d.flows
        row: dict[str, Any] = {
            "date": dt.date.fromisoformat(d.date), "start_unix_ms": d.start_unix_ms, "end_unix_ms": d.end_unix_ms,
            "hours": (d.end_unix_ms - d.start_unix_ms) / 3.6e6,
            **{channel: _opt(f, channel) for channel in ENERGY_CHANNELS},
            "solar_self_consumed_wh": _opt(f, "solar_self_consumed_wh"),
            "self_consumption_ratio": _opt(f, "self_consumption_ratio"),
            "self_sufficiency_ratio": _opt(f, "self_sufficiency_ratio"),
            "covered_s": f.covered_s, "coverage": _opt(f, "coverage"),
        }
        if d.HasField("cost"):
            row.update({name: (getattr(d.cost, name) if name == "net_cost" else _opt(d.cost, name))
                        for name in COST_FIELDS})
        rows.append(row)
    columns = ["date", "start_unix_ms", "end_unix_ms", "hours", *ENERGY_CHANNELS, "solar_self_consumed_wh",
               "self_consumption_ratio", "self_sufficiency_ratio", "covered_s", "coverage"]
    return pd.DataFrame(rows, columns=columns + [c for c in COST_FIELDS if rows and c in rows[0]])


def _print_report(target: str, result: Any) -> None:
    from rich.table import Table

    costed = result.HasField("cost")
    table = Table(title=f"{target}: {result.installations} installation(s), "
                        f"{result.time_zone or 'each in its own zone'}, read from {_rollups(result.resolutions_s)} "
                        f"rollups" + (f", {result.currency}" if result.currency else ""), title_justify="left")
    for column in ("date", "h", "load kWh", "solar kWh", "direct kWh", "batt in", "batt out", "import",
                   "export", "self-cons.", "self-suff.", "coverage", *(("cost", "savings") if costed else ())):
        table.add_column(column, justify="left" if column == "date" else "right")
    for d in result.days:
        f = d.flows
        cells = [d.date, f"{(d.end_unix_ms - d.start_unix_ms) / 3.6e6:g}", *_energy_cells(f),
                 _pct(_opt(f, "self_consumption_ratio")), _pct(_opt(f, "self_sufficiency_ratio")),
                 _pct(_opt(f, "coverage"))]
        if d.HasField("cost"):
            cells += [_money(d.cost.net_cost), _money(_opt(d.cost, "total_savings"))]
        table.add_row(*cells)
    t = result.total
    total = ["total", f"{t.span_s / 3_600 / max(result.installations, 1):g}", *_energy_cells(t),
             _pct(_opt(t, "self_consumption_ratio")), _pct(_opt(t, "self_sufficiency_ratio")),
             _pct(_opt(t, "coverage"))]
    c = result.cost
    if costed:
        total += [_money(c.net_cost), _money(_opt(c, "total_savings"))]
    table.add_section()
    table.add_row(*total, style="bold")
    output.stdout().print(table)
    if costed:
        output.stdout().print(
            f"cost {c.net_cost:,.2f} (import {c.import_cost:,.2f} − export {c.export_revenue:,.2f}); without battery "
            f"{_money(_opt(c, 'no_battery_net_cost'))}, without battery and solar "
            f"{_money(_opt(c, 'no_solar_no_battery_net_cost'))}: battery saved {_money(_opt(c, 'battery_savings'))}, "
            f"solar {_money(_opt(c, 'solar_savings'))}", highlight=False)


def _energy_cells(f: Any) -> list[str]:
    """load, solar, direct, battery in, out, import, export: "–" where the signal was not reported."""
    return [_kwh(_opt(f, channel)) for channel in ("load_wh", "solar_wh", "solar_direct_wh", "battery_charge_wh",
                                                   "battery_discharge_wh", "grid_import_wh", "grid_export_wh")]


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
             min_swing_pct: Annotated[float, typer.Option(min=1, max=100,
                                                          help="Shallower half-cycles give no estimate")] = 30.0,
             fmt: OutputOption = Format.table,
             csv: CsvOut = None, parquet: ParquetOut = None, chart: ChartOut = None) -> None:
    """Battery capacity from charge/discharge cycles, its fade and the projection to 80 %."""
    from gridtwin.api.analytics.v1 import analytics_pb2 as pb

    request = pb.CapacityTrendRequest(installation_id=installation, range=_dates(first, end),
                                      min_swing_pct=min_swing_pct)
    with client.api("analytics") as api:
        trend = api.call(api_stub(api).GetCapacityTrend, request, timeout_s=300)
    frame = capacity_frame(trend)
    if fmt is Format.table:
        _print_trend(installation, trend)
    else:
        _stdout(frame, fmt)
    _export(frame, csv, parquet)
    if chart is not None:
        capacity_chart(trend, f"{installation} — battery capacity", chart)
        output.note(f"wrote {chart}")


def capacity_frame(trend: Any) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([{
        "at_unix_ms": c.at_unix_ms, "at": dt.datetime.fromtimestamp(c.at_unix_ms / 1_000, dt.UTC),
        "capacity_wh": c.capacity_wh, "round_trip_efficiency": c.round_trip_efficiency,
        "equivalent_full_cycles": c.equivalent_full_cycles,
    } for c in trend.cycles], columns=["at_unix_ms", "at", "capacity_wh", "round_trip_efficiency",
                                       "equivalent_full_cycles"])


def _print_trend(installation: str, trend: Any) -> None:
    from rich.table import Table

    table = Table(title=f"{installation}: battery capacity", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    nominal = _opt(trend, "nominal_wh")
    table.add_row("nominal", "–" if nominal is None else f"{nominal / 1_000:,.2f} kWh")
    table.add_row("half-cycles / cycles used", f"{len(trend.half_cycles)} / {len(trend.cycles)}")
    table.add_row("equivalent full cycles", f"{trend.equivalent_full_cycles:,.1f}")
    capacity_wh = _opt(trend, "capacity_wh")
    if capacity_wh is not None:
        share = f" ({capacity_wh / nominal * 100:.1f} % of nominal)" if nominal else ""
        table.add_row("capacity now (fit)", f"{capacity_wh / 1_000:,.2f} kWh{share}")
    if trend.cycles:
        efficiency = sum(c.round_trip_efficiency for c in trend.cycles) / len(trend.cycles)
        table.add_row("round-trip efficiency (mean)", f"{efficiency * 100:.1f} %")
    if trend.HasField("by_time"):
        r2 = "–" if not trend.by_time.HasField("r_squared") else f"{trend.by_time.r_squared:.3f}"
        table.add_row("fade per year", f"{trend.by_time.slope:,.0f} Wh "
                                       f"({_pct((_opt(trend, 'fade_pct_per_year') or 0) / 100)}), R² {r2}")
    if trend.HasField("by_cycle"):
        r2 = "–" if not trend.by_cycle.HasField("r_squared") else f"{trend.by_cycle.r_squared:.3f}"
        table.add_row("fade per cycle", f"{trend.by_cycle.slope:,.2f} Wh, R² {r2}")
    if trend.HasField("end_of_life_unix_ms"):
        table.add_row("reaches 80 % of nominal", output.when(trend.end_of_life_unix_ms)[:10])
    output.stdout().print(table)
    if not trend.half_cycles:
        output.note("no charge/discharge cycles in this range (no battery data, or too shallow: --min-swing-pct)")


def capacity_chart(trend: Any, title: str, path: Path) -> None:
    import numpy as np

    from services.analytics.capacity import YEAR_MS

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5))
    if trend.cycles:
        at = np.array([c.at_unix_ms for c in trend.cycles])
        ax.scatter(at.astype("datetime64[ms]"), [c.capacity_wh / 1_000 for c in trend.cycles], s=6,
                   label="cycle estimate", color="#2a9d8f")
        if trend.HasField("by_time"):
            end = max(int(at[-1]), trend.end_of_life_unix_ms if trend.HasField("end_of_life_unix_ms") else 0)
            line = np.array([at[0], end])
            fitted = trend.by_time.intercept + trend.by_time.slope * (line - at[0]) / YEAR_MS
            ax.plot(line.astype("datetime64[ms]"), fitted / 1_000, color="black", linewidth=1, label="linear fit")
    nominal = _opt(trend, "nominal_wh")
    if nominal:
        ax.axhline(nominal / 1_000, color="#6c757d", linestyle=":", label="nominal")
        ax.axhline(0.8 * nominal / 1_000, color="#e63946", linestyle="--", label="80 % of nominal")
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


POWER_CHANNELS = ("site_power_w", "battery_power_w", "solar_power_w", "load_power_w", "state_of_charge_pct")


@app.command()
def series(target: Target, first: First, end: End, group: Group = False,
           points: Annotated[int, typer.Option(min=3, max=10_000, help="Points per channel")] = 1_000,
           resolution: Annotated[str, typer.Option(help="auto, raw, 1m, 15m, 1h or 1d")] = "auto",
           channel: Annotated[list[str] | None, typer.Option(help=f"Channels (default: all): "
                                                                  f"{', '.join(POWER_CHANNELS)}")] = None,
           fmt: OutputOption = Format.table,
           csv: CsvOut = None, parquet: ParquetOut = None, chart: ChartOut = None) -> None:
    """Power series for charts: a resolution from the range, LTTB down to the point budget. The
    table is a summary per channel; -o json / csv print every point."""
    from gridtwin.api.analytics.v1 import analytics_pb2 as pb

    if resolution not in RESOLUTIONS:
        raise CliError(f"--resolution: one of {', '.join(RESOLUTIONS)}", USAGE)
    unknown = set(channel or ()) - set(POWER_CHANNELS)
    if unknown:
        raise CliError(f"--channel {', '.join(sorted(unknown))}: choose from {', '.join(POWER_CHANNELS)}", USAGE)
    request = pb.SeriesRequest(target=_target(target, group), range=_dates(first, end), max_points=points,
                               resolution=pb.Resolution.Value(RESOLUTIONS[resolution]), channels=channel or [])
    with client.api("analytics") as api:
        reply = api.call(api_stub(api).GetSeries, request, timeout_s=300)
    frame = series_frame(reply)
    label = RESOLUTION_LABELS.get(pb.Resolution.Name(reply.resolution), "rollups")
    if reply.points_read == 0:
        _no_data(target, first, end)
    if fmt is Format.table:
        if reply.points_read:
            rows = [{"channel": s.channel, "points": len(s.values),
                     "first": output.when(s.timestamps_unix_ms[0]) if s.timestamps_unix_ms else "",
                     "last": output.when(s.timestamps_unix_ms[-1]) if s.timestamps_unix_ms else "",
                     "min": min(s.values, default=None), "max": max(s.values, default=None)} for s in reply.series]
            output.emit(rows, ("channel", "points", "first", "last", "min", "max"), fmt,
                        title=f"{target}: read {reply.points_read:,} points ({label})",
                        right=("points", "min", "max"))
    else:
        _stdout(frame, fmt)
    _export(frame, csv, parquet)
    if chart is not None:
        series_chart(reply, f"{target} — {label}, LTTB to {points} points", chart)
        output.note(f"wrote {chart}")


def series_frame(reply: Any) -> pd.DataFrame:
    """Long format: one row per (channel, point)."""
    import pandas as pd

    parts = [pd.DataFrame({"channel": s.channel, "timestamp_unix_ms": list(s.timestamps_unix_ms),
                           "value": list(s.values)}) for s in reply.series if len(s.values)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["channel", "timestamp_unix_ms", "value"])


def series_chart(reply: Any, title: str, path: Path) -> None:
    import numpy as np

    plt = _pyplot()
    channels = {s.channel: (np.array(s.timestamps_unix_ms, dtype="int64"), np.array(s.values)) for s in reply.series}
    soc = channels.pop("state_of_charge_pct", None)
    fig, ax = plt.subplots(figsize=(12, 5))
    for name, (ts, values) in channels.items():
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
    if channels:
        ax.legend(loc="upper left", fontsize=8, ncols=4)
    else:
        ax.text(0.5, 0.5, "no data in this range", ha="center", transform=ax.transAxes)
    ax.set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
