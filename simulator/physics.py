"""Vectorised physical model of a fleet of home battery + solar installations.

The model is pure: no asyncio, no network, no wall clock. The caller passes the
simulated time to :meth:`FleetModel.step`, which advances every device at once
with numpy arrays indexed by device (no Python loop over devices), so a step of
10,000 devices costs about half a millisecond.

Sign conventions follow a Tesla Powerwall gateway, all powers in W::

    load_power_w = site_power_w + battery_power_w + solar_power_w

* ``site_power_w``    > 0 importing from the grid, < 0 exporting;
* ``battery_power_w`` > 0 discharging, < 0 charging;
* ``solar_power_w``   > 0 producing;
* ``load_power_w``    > 0 home consumption.

Models in brief:

* Solar: pvlib Ineichen clear-sky irradiance for the fleet centre, transposed
  to a fixed tilted plane, PVWatts DC (with SAPM cell temperature) and PVWatts
  inverter, as AC W per W of DC peak. It is computed once per UTC day at
  one-minute resolution and interpolated; each device applies its own peak
  power, a solar-time shift for its longitude and a cloudiness factor that
  follows a slow, bounded random walk.
* Load: a real household trace (Ausgrid Solar Home, half-hourly general
  consumption) or the demandlib BDEW H25 standard profile, used as a shape by
  day of year and time of day, with a per-device time shift, scale and small
  correlated noise.
* Battery: self-consumption by default, or a per-device power setpoint; SOC is
  integrated with the round-trip efficiency split evenly between charge and
  discharge.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import functools
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "FleetConfig",
    "FleetModel",
    "FleetSnapshot",
    "DeviceIndex",
    "default_household_trace_csv",
]

LoadSource = Literal["household_trace", "bdew"]
DeviceIndex = int | Sequence[int] | npt.NDArray[np.integer] | npt.NDArray[np.bool_]

_SECONDS_PER_DAY = 86_400
_SECONDS_PER_HOUR = 3_600.0
_HALF_HOUR_S = 1_800.0
_QUARTER_HOUR_S = 900.0
_SOLAR_PROFILE_STEP_S = 60.0
# The per-UTC-day solar profile extends this far on each side of the day so
# that devices whose solar time is shifted by their longitude, and steps that
# land exactly on midnight, never read outside it.
_SOLAR_PROFILE_MARGIN_S = 3_600.0
# Solar time moves by 4 minutes per degree of longitude.
_SOLAR_TIME_S_PER_DEG_LON = 240.0
# First day-of-year (0-based) of each month in a leap year: the household trace
# is keyed by calendar day so that 29 February has a slot of its own.
_LEAP_YEAR_MONTH_START_DAY = np.cumsum([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30])
_LEAP_YEAR_DAYS = 366
_HOUSEHOLD_TRACE_FILE = "ausgrid_solarhome_customer12_2011-2012_halfhourly.csv"


def default_household_trace_csv() -> Path:
    """Path of the Ausgrid household trace shipped next to the repository."""
    repo = Path(__file__).resolve().parents[1]
    return repo.parent / "shared" / "data" / "household_load_pv" / _HOUSEHOLD_TRACE_FILE


@dataclass(frozen=True)
class FleetConfig:
    """Parameters of a simulated fleet; every random draw derives from ``seed``.

    Ranges are ``(low, high)`` tuples drawn uniformly per device; a range with
    ``low == high`` makes that property deterministic. Setting
    ``cloud_factor_range=(1.0, 1.0)`` gives clear-sky solar, and
    ``load_scale_range=(1.0, 1.0)``, ``load_time_shift_max_s=0`` and
    ``load_noise_pct=0`` make each device reproduce the load shape exactly.
    """

    n_devices: int
    seed: int = 0
    latitude: float = 37.4
    """Fleet centre latitude in degrees north."""
    longitude: float = -122.1
    """Fleet centre longitude in degrees east."""
    timezone: str = "America/Los_Angeles"
    """IANA time zone of the fleet: the load shapes follow its wall clock."""
    battery_nominal_energy_wh: float = 13_500.0
    battery_max_power_w: float = 5_000.0
    round_trip_efficiency: float = 0.90
    """Split evenly: sqrt on charge and sqrt on discharge."""
    backup_reserve_pct: float = 20.0
    """The battery never discharges below this SOC (self-consumption or setpoint)."""
    pv_peak_w_range: tuple[float, float] = (3_000.0, 8_000.0)
    load_source: LoadSource = "household_trace"
    household_trace_csv: Path | None = None
    """Half-hourly trace with a ``GC`` column in kWh; None = the shared Ausgrid file."""
    household_trace_day_offset_days: int = 0
    """Simulated day D replays trace day D + offset (calendar days, wrapping). The
    Ausgrid trace is from Sydney: 182 gives a northern-hemisphere fleet matching seasons."""
    location_spread_deg: float = 0.25
    """Devices sit uniformly within +/- this many degrees of the fleet centre."""
    pv_tilt_deg: float = 20.0
    pv_azimuth_deg: float = 180.0
    """Panel azimuth in degrees clockwise from north (180 = facing south)."""
    pv_system_loss_pct: float = 10.0
    """DC losses (soiling, wiring, mismatch) before the inverter."""
    ambient_temperature_c: float = 20.0
    cloud_factor_range: tuple[float, float] = (0.4, 1.0)
    """Bounds of the per-device clear-sky index that multiplies the solar output."""
    cloud_walk_sigma_per_sqrt_s: float = 0.003
    """Random-walk intensity of the cloud factor: std grows as sigma * sqrt(t_s)."""
    load_scale_range: tuple[float, float] = (0.6, 1.8)
    """Multiplier of the household trace per device (unused by ``bdew``)."""
    bdew_annual_energy_kwh_range: tuple[float, float] = (3_000.0, 7_000.0)
    load_time_shift_max_s: float = 3_600.0
    """Each device's load shape is shifted by a uniform draw in +/- this."""
    load_noise_pct: float = 3.0
    """Standard deviation of the multiplicative load noise."""
    load_noise_correlation_s: float = 20.0
    min_load_w: float = 30.0
    """Floor of the home consumption: the load is always > 0."""
    initial_soc_pct_range: tuple[float, float] = (30.0, 90.0)

    def __post_init__(self) -> None:
        if self.n_devices < 1:
            raise ValueError("n_devices must be >= 1")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and not value[0] <= value[1]:
                raise ValueError(f"{f.name} must be (low, high) with low <= high, got {value}")
        if self.load_source not in ("household_trace", "bdew"):
            raise ValueError(f"unknown load_source {self.load_source!r}")
        if not 0.0 < self.round_trip_efficiency <= 1.0:
            raise ValueError("round_trip_efficiency must be in (0, 1]")
        if not 0.0 <= self.backup_reserve_pct <= 100.0:
            raise ValueError("backup_reserve_pct must be in [0, 100]")
        if self.battery_nominal_energy_wh <= 0 or self.battery_max_power_w <= 0:
            raise ValueError("battery energy and power must be > 0")
        if self.min_load_w <= 0:
            raise ValueError("min_load_w must be > 0 so that the load is always positive")
        if not 0.0 <= self.location_spread_deg <= 10.0:
            # The solar profile's margin (1 h) covers +/- 15 degrees of solar-time shift.
            raise ValueError("location_spread_deg must be in [0, 10]")
        if self.pv_peak_w_range[0] < 0 or self.cloud_factor_range[0] < 0:
            raise ValueError("PV peak and cloud factor must be >= 0")
        if self.initial_soc_pct_range[0] < 0 or self.initial_soc_pct_range[1] > 100:
            raise ValueError("initial_soc_pct_range must lie within [0, 100]")
        ZoneInfo(self.timezone)  # fail early on a misspelt zone


@dataclass(frozen=True)
class FleetSnapshot:
    """Readings of every device at one instant: numpy arrays of shape ``(n,)``.

    Powers are in W and are the mean over the step that ended at the snapshot's
    time; SOC is at the end of that step. The arrays are read-only. Without an
    injected fault, ``load = site + battery + solar`` holds to floating point.
    """

    site_power_w: np.ndarray
    battery_power_w: np.ndarray
    solar_power_w: np.ndarray
    load_power_w: np.ndarray
    state_of_charge_pct: np.ndarray
    grid_connected: np.ndarray

    @property
    def n_devices(self) -> int:
        return int(self.site_power_w.shape[0])


# --------------------------------------------------------------------------
# Profiles: computed once and cached, then interpolated every step.
# --------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_library_deprecations() -> Iterator[None]:
    """Silence pandas deprecations raised inside pvlib/demandlib: not ours to fix,
    and they would otherwise be repeated for every simulated day."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _interp_periodic_means(values: np.ndarray, interval_s: float, pos_s: np.ndarray) -> np.ndarray:
    """Interpolate a periodic series of interval means at positions ``pos_s``.

    ``values[i]`` is the mean over ``[i, i + 1) * interval_s``. It is placed at
    the interval's midpoint so that linear interpolation keeps the energy of a
    whole period exactly (and of a day to within the edge half-intervals).
    """
    n = values.shape[0]
    u = pos_s / interval_s - 0.5
    i0f = np.floor(u)
    frac = u - i0f
    i0 = i0f.astype(np.intp) % n
    i1 = i0 + 1
    i1[i1 == n] = 0
    v0 = values[i0]
    return v0 + frac * (values[i1] - v0)


@functools.lru_cache(maxsize=4)
def _household_trace_w(path: Path) -> np.ndarray:
    """Mean household load in W per half-hour slot of a leap year (366 * 48 slots).

    The trace's wall-clock timestamps label the start of each half-hour and are
    mapped by calendar day and time of day, whatever year they come from.
    Slots the trace does not cover (e.g. 29 February from a non-leap year) are
    filled by periodic linear interpolation.
    """
    frame = pd.read_csv(path, index_col=0, parse_dates=True)
    if "GC" not in frame.columns:
        raise ValueError(f"{path}: expected a GC column (kWh per half-hour)")
    index = pd.DatetimeIndex(frame.index)
    day = _LEAP_YEAR_MONTH_START_DAY[index.month.to_numpy() - 1] + index.day.to_numpy() - 1
    slot = day * 48 + index.hour.to_numpy() * 2 + index.minute.to_numpy() // 30
    # kWh per half-hour -> mean W over it.
    power_w = frame["GC"].to_numpy(dtype=np.float64) * 2_000.0
    n_slots = _LEAP_YEAR_DAYS * 48
    ok = np.isfinite(power_w)
    sums = np.bincount(slot[ok], weights=power_w[ok], minlength=n_slots)
    counts = np.bincount(slot[ok], minlength=n_slots)
    if not counts.any():
        raise ValueError(f"{path}: no usable GC values")
    have = counts > 0
    out = np.empty(n_slots)
    out[have] = sums[have] / counts[have]
    missing = np.flatnonzero(~have)
    if missing.size:
        out[missing] = np.interp(missing, np.flatnonzero(have), out[have], period=n_slots)
    return _read_only(out)


@functools.lru_cache(maxsize=4)
def _bdew_household_w_per_annual_kwh(year: int) -> np.ndarray:
    """BDEW H25 household profile for ``year``: mean W per quarter-hour per kWh/year.

    Falls back to the older H0 (dynamic) profile on demandlib versions without
    H25. Holidays are not modelled (treated as ordinary weekdays).
    """
    n = (366 if calendar.isleap(year) else 365) * 96
    index = pd.date_range(dt.datetime(year, 1, 1), periods=n, freq="15min")
    with _quiet_library_deprecations():
        try:
            from demandlib.bdew import H25

            shape = np.asarray(H25(index), dtype=np.float64)
        except ImportError:
            from demandlib.bdew import ElecSlp

            slp = ElecSlp(year).get_profiles("h0_dyn")
            shape = slp["h0_dyn"].to_numpy(dtype=np.float64)
    # Normalise so that 1 kWh/year integrates to exactly 1 kWh over the year.
    energy_kwh = shape.sum() * _QUARTER_HOUR_S / _SECONDS_PER_HOUR
    return _read_only(shape / energy_kwh * 1_000.0)


@functools.lru_cache(maxsize=8)
def _clear_sky_ac_w_per_wp(
    day: dt.date,
    latitude: float,
    longitude: float,
    tilt_deg: float,
    azimuth_deg: float,
    system_loss_pct: float,
    ambient_temperature_c: float,
) -> np.ndarray:
    """Clear-sky AC power per W of DC peak, sampled every minute.

    Sample ``k`` is at ``day 00:00 UTC - margin + k minutes``, covering the UTC
    day plus ``_SOLAR_PROFILE_MARGIN_S`` on each side. Zero whenever the sun is
    below the horizon; at most 1 (the inverter is rated at the DC peak).
    """
    with _quiet_library_deprecations():
        return _read_only(
            _pvlib_ac_w_per_wp(
                day,
                latitude,
                longitude,
                tilt_deg,
                azimuth_deg,
                system_loss_pct,
                ambient_temperature_c,
            )
        )


def _pvlib_ac_w_per_wp(
    day: dt.date,
    latitude: float,
    longitude: float,
    tilt_deg: float,
    azimuth_deg: float,
    system_loss_pct: float,
    ambient_temperature_c: float,
) -> np.ndarray:
    """Uncached body of :func:`_clear_sky_ac_w_per_wp`."""
    import pvlib

    start = pd.Timestamp(day, tz="UTC") - pd.Timedelta(seconds=_SOLAR_PROFILE_MARGIN_S)
    periods = int((_SECONDS_PER_DAY + 2 * _SOLAR_PROFILE_MARGIN_S) / _SOLAR_PROFILE_STEP_S) + 1
    times = pd.date_range(start, periods=periods, freq=f"{int(_SOLAR_PROFILE_STEP_S)}s")
    site = pvlib.location.Location(latitude, longitude, tz="UTC")
    solpos = site.get_solarposition(times)
    sky = site.get_clearsky(times, model="ineichen", solar_position=solpos)
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt=tilt_deg,
        surface_azimuth=azimuth_deg,
        solar_zenith=solpos["apparent_zenith"],
        solar_azimuth=solpos["azimuth"],
        dni=sky["dni"],
        ghi=sky["ghi"],
        dhi=sky["dhi"],
        albedo=0.2,
        model="isotropic",
    )["poa_global"]
    poa_w_m2 = np.clip(np.nan_to_num(poa.to_numpy(dtype=np.float64)), 0.0, None)
    temp_params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    temp_cell_c = pvlib.temperature.sapm_cell(poa_w_m2, ambient_temperature_c, 1.0, **temp_params)
    dc_w_per_wp = pvlib.pvsystem.pvwatts_dc(poa_w_m2, temp_cell_c, pdc0=1.0, gamma_pdc=-0.0037)
    dc_w_per_wp = np.asarray(dc_w_per_wp, dtype=np.float64) * (1.0 - system_loss_pct / 100.0)
    eta_inverter = 0.96
    ac_w_per_wp = pvlib.inverter.pvwatts(dc_w_per_wp, pdc0=1.0 / eta_inverter)
    ac_w_per_wp = np.clip(np.nan_to_num(np.asarray(ac_w_per_wp, dtype=np.float64)), 0.0, 1.0)
    ac_w_per_wp[solpos["apparent_elevation"].to_numpy() <= 0.0] = 0.0
    return ac_w_per_wp


def _reflect_into(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fold ``x`` back into ``[low, high]`` by reflection at the bounds."""
    width = high - low
    if width <= 0.0:
        return np.full_like(x, low)
    y = np.mod(x - low, 2.0 * width)
    return low + np.where(y > width, 2.0 * width - y, y)


def _as_aware_utc(t: dt.datetime, name: str) -> dt.datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return t.astimezone(dt.UTC)


# --------------------------------------------------------------------------
# The fleet
# --------------------------------------------------------------------------


class FleetModel:
    """N home installations (solar + battery + load) advanced together.

    Guarantees, for every device and step:

    * without an injected fault, ``load = site + battery + solar`` to floating point;
    * ``load_power_w >= config.min_load_w > 0``; ``solar_power_w >= 0`` and is 0 at night;
    * ``|battery_power_w| <= battery_max_power_w``; SOC stays in ``[0, 100]``, never
      rises above 100 % and never falls below ``backup_reserve_pct`` by discharging
      (a battery that starts below it only charges);
    * the stored energy changes by ``-P * dt / sqrt(eff)`` when discharging at
      ``P > 0`` and by ``|P| * dt * sqrt(eff)`` when charging.

    Attributes:
        device_latitude_deg, device_longitude_deg: per-device location (read-only).
        pv_peak_w: per-device DC peak of the PV array in W (read-only).
        battery_setpoint_w: per-device control, shape ``(n,)``. NaN follows
            self-consumption (charge only from surplus solar, discharge to cover
            the deficit); a number is a battery power setpoint in W (> 0
            discharge, < 0 charge, possibly from the grid), still limited by the
            maximum power, by SOC 100 % and by the backup reserve.
        backup_reserve_pct: per-device backup reserve, shape ``(n,)`` (starts at
            ``config.backup_reserve_pct``): discharging never goes below it.
        soc_floor_pct: per-device extra discharge floor (a control plan's), shape
            ``(n,)``, default 0: discharging stops at max(floor, reserve).
        soc_ceiling_pct: per-device charge ceiling (a plan's charge target), shape
            ``(n,)``, default 100: charging stops there.

    The control arrays are what simulator/control.py sets from control plans
    and commands; the step applies them to every device at once.
    """

    def __init__(self, config: FleetConfig, start: dt.datetime) -> None:
        self.config = config
        self._time = _as_aware_utc(start, "start")
        self._tz = ZoneInfo(config.timezone)
        self._rng = np.random.default_rng(config.seed)
        n = config.n_devices
        rng = self._rng

        self.device_latitude_deg = _read_only(
            config.latitude + rng.uniform(-1.0, 1.0, n) * config.location_spread_deg
        )
        self.device_longitude_deg = _read_only(
            config.longitude + rng.uniform(-1.0, 1.0, n) * config.location_spread_deg
        )
        self.pv_peak_w = _read_only(rng.uniform(*config.pv_peak_w_range, n))
        # A device east of the centre sees the sun earlier, so it reads the
        # centre's profile at a later instant.
        self._solar_shift_s = (
            self.device_longitude_deg - config.longitude
        ) * _SOLAR_TIME_S_PER_DEG_LON
        self._cloud_factor = rng.uniform(*config.cloud_factor_range, n)

        self._load_shift_s = rng.uniform(-1.0, 1.0, n) * config.load_time_shift_max_s
        if config.load_source == "household_trace":
            self._load_scale = rng.uniform(*config.load_scale_range, n)
            path = config.household_trace_csv or default_household_trace_csv()
            self._trace_w = _household_trace_w(Path(path).resolve())
        else:
            self._load_scale = rng.uniform(*config.bdew_annual_energy_kwh_range, n)
        self._load_noise = rng.standard_normal(n) * (config.load_noise_pct / 100.0)

        self._soc_pct = rng.uniform(*config.initial_soc_pct_range, n)
        self._sqrt_eff = math.sqrt(config.round_trip_efficiency)
        self._wh_per_pct = config.battery_nominal_energy_wh / 100.0

        self.battery_setpoint_w: np.ndarray = np.full(n, np.nan)
        self.backup_reserve_pct: np.ndarray = np.full(n, config.backup_reserve_pct)
        self.soc_floor_pct: np.ndarray = np.zeros(n)
        self.soc_ceiling_pct: np.ndarray = np.full(n, 100.0)
        self._grid_connected = np.ones(n, dtype=bool)
        self._negative_solar_w = np.full(n, np.nan)
        self._stuck = np.zeros(n, dtype=bool)
        self._last: FleetSnapshot | None = None

    # ---------------------------------------------------------------- state

    @property
    def n_devices(self) -> int:
        return self.config.n_devices

    @property
    def time(self) -> dt.datetime:
        """Simulated UTC time of the latest step (the start before any step)."""
        return self._time

    @property
    def state_of_charge_pct(self) -> np.ndarray:
        """True SOC of every device in %, a copy (unaffected by sensor faults)."""
        return self._soc_pct.copy()

    @property
    def load_scale(self) -> np.ndarray:
        """Per-device load multiplier, a copy: trace scale, or annual kWh for ``bdew``."""
        return self._load_scale.copy()

    @property
    def cloud_factor(self) -> np.ndarray:
        """Current clear-sky index of every device, a copy."""
        return self._cloud_factor.copy()

    @property
    def last_snapshot(self) -> FleetSnapshot | None:
        return self._last

    # -------------------------------------------------------------- faults

    def _indices(self, devices: DeviceIndex) -> np.ndarray:
        idx = np.asarray(devices)
        if idx.dtype == np.bool_:
            if idx.shape != (self.n_devices,):
                raise ValueError("a boolean device mask must have shape (n_devices,)")
            return np.flatnonzero(idx)
        idx = idx.astype(np.intp, casting="safe").reshape(-1)
        if idx.size and (idx.min() < -self.n_devices or idx.max() >= self.n_devices):
            raise IndexError(f"device index out of range for {self.n_devices} devices")
        return idx

    def inject_negative_solar(self, devices: DeviceIndex, watts: float = -60.0) -> None:
        """Make the solar reading of ``devices`` report ``watts`` (< 0) from the next step.

        A sensor fault only: the physics underneath is unchanged, so the reported
        power balance no longer closes for these devices.
        """
        if not watts < 0.0:
            raise ValueError("a negative-solar fault needs watts < 0")
        self._negative_solar_w[self._indices(devices)] = watts

    def inject_stuck_sensor(self, devices: DeviceIndex) -> None:
        """Make ``devices`` repeat the exact values of their last snapshot.

        If no step has run yet, the values of the first step are repeated. The
        physics (SOC, cloud, noise) keeps evolving underneath.
        """
        self._stuck[self._indices(devices)] = True

    def clear_faults(self, devices: DeviceIndex) -> None:
        """Remove every injected fault of ``devices``; the next step reports true values."""
        idx = self._indices(devices)
        self._negative_solar_w[idx] = np.nan
        self._stuck[idx] = False

    # ---------------------------------------------------------------- step

    def _solar_w(self, now: dt.datetime) -> np.ndarray:
        day = now.date()
        profile = _clear_sky_ac_w_per_wp(
            day,
            self.config.latitude,
            self.config.longitude,
            self.config.pv_tilt_deg,
            self.config.pv_azimuth_deg,
            self.config.pv_system_loss_pct,
            self.config.ambient_temperature_c,
        )
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        t_s = (now - midnight).total_seconds() + _SOLAR_PROFILE_MARGIN_S
        u = (t_s + self._solar_shift_s) / _SOLAR_PROFILE_STEP_S
        i0f = np.floor(u)
        frac = u - i0f
        i0 = i0f.astype(np.intp)
        p0 = profile[i0]
        w_per_wp = p0 + frac * (profile[i0 + 1] - p0)
        return self.pv_peak_w * self._cloud_factor * w_per_wp

    def _load_shape(self, now: dt.datetime) -> np.ndarray:
        """Unscaled load shape per device at ``now`` (W, or W per kWh/year for BDEW)."""
        local = now.astimezone(self._tz)
        second_of_day = (
            local.hour * _SECONDS_PER_HOUR + local.minute * 60.0 + local.second
        ) + local.microsecond * 1e-6
        if self.config.load_source == "household_trace":
            day = int(_LEAP_YEAR_MONTH_START_DAY[local.month - 1]) + local.day - 1
            day += self.config.household_trace_day_offset_days
            pos_s = day * _SECONDS_PER_DAY + second_of_day + self._load_shift_s
            return _interp_periodic_means(self._trace_w, _HALF_HOUR_S, pos_s)
        profile = _bdew_household_w_per_annual_kwh(local.year)
        day = local.timetuple().tm_yday - 1
        pos_s = day * _SECONDS_PER_DAY + second_of_day + self._load_shift_s
        return _interp_periodic_means(profile, _QUARTER_HOUR_S, pos_s)

    def _advance_random_state(self, dt_s: float) -> None:
        cfg = self.config
        n = self.n_devices
        if dt_s <= 0.0:
            return
        lo, hi = cfg.cloud_factor_range
        if hi > lo and cfg.cloud_walk_sigma_per_sqrt_s > 0.0:
            sigma_step = cfg.cloud_walk_sigma_per_sqrt_s * math.sqrt(dt_s)
            walked = self._cloud_factor + self._rng.standard_normal(n) * sigma_step
            self._cloud_factor = _reflect_into(walked, lo, hi)
        if cfg.load_noise_pct > 0.0:
            # Ornstein-Uhlenbeck, discretised exactly: same statistics whatever dt_s is.
            a = math.exp(-dt_s / max(cfg.load_noise_correlation_s, 1e-9))
            sigma = cfg.load_noise_pct / 100.0
            self._load_noise *= a
            self._load_noise += self._rng.standard_normal(n) * (sigma * math.sqrt(1.0 - a * a))

    def step(self, now: dt.datetime, dt_s: float) -> FleetSnapshot:
        """Advance every device by ``dt_s`` seconds to ``now`` and return its readings.

        ``now`` must be timezone-aware. Powers are evaluated at ``now`` and held
        over the ``dt_s`` seconds ending at ``now`` to integrate the SOC. With
        ``dt_s == 0`` nothing is integrated (powers are still limited by the SOC
        bounds). Raises ValueError on a negative ``dt_s`` or a malformed
        ``battery_setpoint_w``.
        """
        if not dt_s >= 0.0:
            raise ValueError(f"dt_s must be >= 0, got {dt_s}")
        now = _as_aware_utc(now, "now")
        cfg = self.config
        n = self.n_devices
        setpoint_w = np.asarray(self.battery_setpoint_w, dtype=np.float64)
        if setpoint_w.shape != (n,):
            raise ValueError(f"battery_setpoint_w must have shape ({n},)")

        self._advance_random_state(dt_s)

        solar_w = self._solar_w(now)
        load_w = self._load_shape(now) * self._load_scale
        load_w *= 1.0 + self._load_noise
        np.maximum(load_w, cfg.min_load_w, out=load_w)

        energy_wh = self._soc_pct * self._wh_per_pct
        request_w = np.where(np.isnan(setpoint_w), load_w - solar_w, setpoint_w)
        max_w = cfg.battery_max_power_w
        floor_wh = np.clip(np.maximum(self.backup_reserve_pct, self.soc_floor_pct), 0.0, 100.0) * self._wh_per_pct
        ceiling_wh = np.clip(self.soc_ceiling_pct, 0.0, 100.0) * self._wh_per_pct
        if dt_s > 0.0:
            per_wh_w = _SECONDS_PER_HOUR / dt_s
            discharge_limit_w = np.minimum(
                np.maximum(energy_wh - floor_wh, 0.0) * (self._sqrt_eff * per_wh_w), max_w
            )
            charge_limit_w = np.minimum(
                np.maximum(ceiling_wh - energy_wh, 0.0) * (per_wh_w / self._sqrt_eff), max_w
            )
        else:
            discharge_limit_w = np.where(energy_wh > floor_wh, max_w, 0.0)
            charge_limit_w = np.where(energy_wh < ceiling_wh, max_w, 0.0)
        battery_w = np.clip(request_w, -charge_limit_w, discharge_limit_w)

        stored_change_w = np.where(
            battery_w > 0.0, battery_w / self._sqrt_eff, battery_w * self._sqrt_eff
        )
        energy_wh -= stored_change_w * (dt_s / _SECONDS_PER_HOUR)
        self._soc_pct = np.clip(energy_wh / self._wh_per_pct, 0.0, 100.0)

        site_w = load_w - solar_w - battery_w
        self._time = now
        snapshot = self._report(site_w, battery_w, solar_w, load_w)
        self._last = snapshot
        return snapshot

    def _report(
        self, site_w: np.ndarray, battery_w: np.ndarray, solar_w: np.ndarray, load_w: np.ndarray
    ) -> FleetSnapshot:
        """Apply sensor faults to the true values and freeze them into a snapshot."""
        soc_pct = self._soc_pct.copy()
        grid = self._grid_connected.copy()
        faulty = ~np.isnan(self._negative_solar_w)
        if faulty.any():
            solar_w = np.where(faulty, self._negative_solar_w, solar_w)
        values = [site_w, battery_w, solar_w, load_w, soc_pct, grid]
        last = self._last
        if last is not None and self._stuck.any():
            stuck = self._stuck
            previous = [
                last.site_power_w,
                last.battery_power_w,
                last.solar_power_w,
                last.load_power_w,
                last.state_of_charge_pct,
                last.grid_connected,
            ]
            values = [np.where(stuck, old, new) for new, old in zip(values, previous, strict=True)]
        site_w, battery_w, solar_w, load_w, soc_pct, grid = (_read_only(v) for v in values)
        return FleetSnapshot(
            site_power_w=site_w,
            battery_power_w=battery_w,
            solar_power_w=solar_w,
            load_power_w=load_w,
            state_of_charge_pct=soc_pct,
            grid_connected=grid,
        )
