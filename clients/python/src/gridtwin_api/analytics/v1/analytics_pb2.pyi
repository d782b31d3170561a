from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Resolution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOLUTION_AUTO: _ClassVar[Resolution]
    RESOLUTION_RAW: _ClassVar[Resolution]
    RESOLUTION_ONE_MINUTE: _ClassVar[Resolution]
    RESOLUTION_FIFTEEN_MINUTES: _ClassVar[Resolution]
    RESOLUTION_ONE_HOUR: _ClassVar[Resolution]
    RESOLUTION_ONE_DAY: _ClassVar[Resolution]
RESOLUTION_AUTO: Resolution
RESOLUTION_RAW: Resolution
RESOLUTION_ONE_MINUTE: Resolution
RESOLUTION_FIFTEEN_MINUTES: Resolution
RESOLUTION_ONE_HOUR: Resolution
RESOLUTION_ONE_DAY: Resolution

class Target(_message.Message):
    __slots__ = ("installation_id", "group_path")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_PATH_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    group_path: str
    def __init__(self, installation_id: _Optional[str] = ..., group_path: _Optional[str] = ...) -> None: ...

class LocalDateRange(_message.Message):
    __slots__ = ("first_date", "end_date")
    FIRST_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    first_date: str
    end_date: str
    def __init__(self, first_date: _Optional[str] = ..., end_date: _Optional[str] = ...) -> None: ...

class InstantRange(_message.Message):
    __slots__ = ("start_unix_ms", "end_unix_ms")
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    start_unix_ms: int
    end_unix_ms: int
    def __init__(self, start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ...) -> None: ...

class TimeRange(_message.Message):
    __slots__ = ("dates", "instants")
    DATES_FIELD_NUMBER: _ClassVar[int]
    INSTANTS_FIELD_NUMBER: _ClassVar[int]
    dates: LocalDateRange
    instants: InstantRange
    def __init__(self, dates: _Optional[_Union[LocalDateRange, _Mapping]] = ..., instants: _Optional[_Union[InstantRange, _Mapping]] = ...) -> None: ...

class TouWindow(_message.Message):
    __slots__ = ("start_minute", "end_minute", "import_price_per_kwh", "export_price_per_kwh", "weekdays", "months", "name")
    START_MINUTE_FIELD_NUMBER: _ClassVar[int]
    END_MINUTE_FIELD_NUMBER: _ClassVar[int]
    IMPORT_PRICE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    EXPORT_PRICE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    WEEKDAYS_FIELD_NUMBER: _ClassVar[int]
    MONTHS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    start_minute: int
    end_minute: int
    import_price_per_kwh: float
    export_price_per_kwh: float
    weekdays: _containers.RepeatedScalarFieldContainer[int]
    months: _containers.RepeatedScalarFieldContainer[int]
    name: str
    def __init__(self, start_minute: _Optional[int] = ..., end_minute: _Optional[int] = ..., import_price_per_kwh: _Optional[float] = ..., export_price_per_kwh: _Optional[float] = ..., weekdays: _Optional[_Iterable[int]] = ..., months: _Optional[_Iterable[int]] = ..., name: _Optional[str] = ...) -> None: ...

class Tariff(_message.Message):
    __slots__ = ("currency", "import_price_per_kwh", "export_price_per_kwh", "windows")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    IMPORT_PRICE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    EXPORT_PRICE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    currency: str
    import_price_per_kwh: float
    export_price_per_kwh: float
    windows: _containers.RepeatedCompositeFieldContainer[TouWindow]
    def __init__(self, currency: _Optional[str] = ..., import_price_per_kwh: _Optional[float] = ..., export_price_per_kwh: _Optional[float] = ..., windows: _Optional[_Iterable[_Union[TouWindow, _Mapping]]] = ...) -> None: ...

class EnergyReportRequest(_message.Message):
    __slots__ = ("target", "range", "tariff", "omit_days")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    TARIFF_FIELD_NUMBER: _ClassVar[int]
    OMIT_DAYS_FIELD_NUMBER: _ClassVar[int]
    target: Target
    range: TimeRange
    tariff: Tariff
    omit_days: bool
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., tariff: _Optional[_Union[Tariff, _Mapping]] = ..., omit_days: _Optional[bool] = ...) -> None: ...

class EnergyFlows(_message.Message):
    __slots__ = ("battery_charge_wh", "battery_discharge_wh", "solar_wh", "load_wh", "grid_import_wh", "grid_export_wh", "solar_direct_wh", "solar_self_consumed_wh", "self_consumption_ratio", "self_sufficiency_ratio", "direct_use_ratio", "covered_s", "span_s", "coverage", "site_covered_s", "battery_covered_s", "solar_covered_s", "load_covered_s")
    BATTERY_CHARGE_WH_FIELD_NUMBER: _ClassVar[int]
    BATTERY_DISCHARGE_WH_FIELD_NUMBER: _ClassVar[int]
    SOLAR_WH_FIELD_NUMBER: _ClassVar[int]
    LOAD_WH_FIELD_NUMBER: _ClassVar[int]
    GRID_IMPORT_WH_FIELD_NUMBER: _ClassVar[int]
    GRID_EXPORT_WH_FIELD_NUMBER: _ClassVar[int]
    SOLAR_DIRECT_WH_FIELD_NUMBER: _ClassVar[int]
    SOLAR_SELF_CONSUMED_WH_FIELD_NUMBER: _ClassVar[int]
    SELF_CONSUMPTION_RATIO_FIELD_NUMBER: _ClassVar[int]
    SELF_SUFFICIENCY_RATIO_FIELD_NUMBER: _ClassVar[int]
    DIRECT_USE_RATIO_FIELD_NUMBER: _ClassVar[int]
    COVERED_S_FIELD_NUMBER: _ClassVar[int]
    SPAN_S_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    SITE_COVERED_S_FIELD_NUMBER: _ClassVar[int]
    BATTERY_COVERED_S_FIELD_NUMBER: _ClassVar[int]
    SOLAR_COVERED_S_FIELD_NUMBER: _ClassVar[int]
    LOAD_COVERED_S_FIELD_NUMBER: _ClassVar[int]
    battery_charge_wh: float
    battery_discharge_wh: float
    solar_wh: float
    load_wh: float
    grid_import_wh: float
    grid_export_wh: float
    solar_direct_wh: float
    solar_self_consumed_wh: float
    self_consumption_ratio: float
    self_sufficiency_ratio: float
    direct_use_ratio: float
    covered_s: float
    span_s: float
    coverage: float
    site_covered_s: float
    battery_covered_s: float
    solar_covered_s: float
    load_covered_s: float
    def __init__(self, battery_charge_wh: _Optional[float] = ..., battery_discharge_wh: _Optional[float] = ..., solar_wh: _Optional[float] = ..., load_wh: _Optional[float] = ..., grid_import_wh: _Optional[float] = ..., grid_export_wh: _Optional[float] = ..., solar_direct_wh: _Optional[float] = ..., solar_self_consumed_wh: _Optional[float] = ..., self_consumption_ratio: _Optional[float] = ..., self_sufficiency_ratio: _Optional[float] = ..., direct_use_ratio: _Optional[float] = ..., covered_s: _Optional[float] = ..., span_s: _Optional[float] = ..., coverage: _Optional[float] = ..., site_covered_s: _Optional[float] = ..., battery_covered_s: _Optional[float] = ..., solar_covered_s: _Optional[float] = ..., load_covered_s: _Optional[float] = ...) -> None: ...

class Cost(_message.Message):
    __slots__ = ("import_cost", "export_revenue", "net_cost", "no_battery_net_cost", "no_solar_no_battery_net_cost", "battery_savings", "solar_savings", "total_savings")
    IMPORT_COST_FIELD_NUMBER: _ClassVar[int]
    EXPORT_REVENUE_FIELD_NUMBER: _ClassVar[int]
    NET_COST_FIELD_NUMBER: _ClassVar[int]
    NO_BATTERY_NET_COST_FIELD_NUMBER: _ClassVar[int]
    NO_SOLAR_NO_BATTERY_NET_COST_FIELD_NUMBER: _ClassVar[int]
    BATTERY_SAVINGS_FIELD_NUMBER: _ClassVar[int]
    SOLAR_SAVINGS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SAVINGS_FIELD_NUMBER: _ClassVar[int]
    import_cost: float
    export_revenue: float
    net_cost: float
    no_battery_net_cost: float
    no_solar_no_battery_net_cost: float
    battery_savings: float
    solar_savings: float
    total_savings: float
    def __init__(self, import_cost: _Optional[float] = ..., export_revenue: _Optional[float] = ..., net_cost: _Optional[float] = ..., no_battery_net_cost: _Optional[float] = ..., no_solar_no_battery_net_cost: _Optional[float] = ..., battery_savings: _Optional[float] = ..., solar_savings: _Optional[float] = ..., total_savings: _Optional[float] = ...) -> None: ...

class DayTotals(_message.Message):
    __slots__ = ("date", "start_unix_ms", "end_unix_ms", "flows", "cost")
    DATE_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    date: str
    start_unix_ms: int
    end_unix_ms: int
    flows: EnergyFlows
    cost: Cost
    def __init__(self, date: _Optional[str] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., flows: _Optional[_Union[EnergyFlows, _Mapping]] = ..., cost: _Optional[_Union[Cost, _Mapping]] = ...) -> None: ...

class EnergyReport(_message.Message):
    __slots__ = ("time_zone", "installations", "start_unix_ms", "end_unix_ms", "total", "cost", "days", "resolutions_s", "max_gap_s", "currency")
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    INSTALLATIONS_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTIONS_S_FIELD_NUMBER: _ClassVar[int]
    MAX_GAP_S_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    time_zone: str
    installations: int
    start_unix_ms: int
    end_unix_ms: int
    total: EnergyFlows
    cost: Cost
    days: _containers.RepeatedCompositeFieldContainer[DayTotals]
    resolutions_s: _containers.RepeatedScalarFieldContainer[int]
    max_gap_s: float
    currency: str
    def __init__(self, time_zone: _Optional[str] = ..., installations: _Optional[int] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., total: _Optional[_Union[EnergyFlows, _Mapping]] = ..., cost: _Optional[_Union[Cost, _Mapping]] = ..., days: _Optional[_Iterable[_Union[DayTotals, _Mapping]]] = ..., resolutions_s: _Optional[_Iterable[int]] = ..., max_gap_s: _Optional[float] = ..., currency: _Optional[str] = ...) -> None: ...

class CapacityTrendRequest(_message.Message):
    __slots__ = ("installation_id", "range", "min_swing_pct")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    MIN_SWING_PCT_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    range: TimeRange
    min_swing_pct: float
    def __init__(self, installation_id: _Optional[str] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., min_swing_pct: _Optional[float] = ...) -> None: ...

class HalfCycle(_message.Message):
    __slots__ = ("charge", "start_unix_ms", "end_unix_ms", "energy_wh", "soc_start_pct", "soc_end_pct", "capacity_wh")
    CHARGE_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_WH_FIELD_NUMBER: _ClassVar[int]
    SOC_START_PCT_FIELD_NUMBER: _ClassVar[int]
    SOC_END_PCT_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_WH_FIELD_NUMBER: _ClassVar[int]
    charge: bool
    start_unix_ms: int
    end_unix_ms: int
    energy_wh: float
    soc_start_pct: float
    soc_end_pct: float
    capacity_wh: float
    def __init__(self, charge: _Optional[bool] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., energy_wh: _Optional[float] = ..., soc_start_pct: _Optional[float] = ..., soc_end_pct: _Optional[float] = ..., capacity_wh: _Optional[float] = ...) -> None: ...

class CycleEstimate(_message.Message):
    __slots__ = ("at_unix_ms", "capacity_wh", "round_trip_efficiency", "equivalent_full_cycles")
    AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_WH_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_EFFICIENCY_FIELD_NUMBER: _ClassVar[int]
    EQUIVALENT_FULL_CYCLES_FIELD_NUMBER: _ClassVar[int]
    at_unix_ms: int
    capacity_wh: float
    round_trip_efficiency: float
    equivalent_full_cycles: float
    def __init__(self, at_unix_ms: _Optional[int] = ..., capacity_wh: _Optional[float] = ..., round_trip_efficiency: _Optional[float] = ..., equivalent_full_cycles: _Optional[float] = ...) -> None: ...

class LinearFit(_message.Message):
    __slots__ = ("slope", "intercept", "r_squared", "points")
    SLOPE_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    R_SQUARED_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    slope: float
    intercept: float
    r_squared: float
    points: int
    def __init__(self, slope: _Optional[float] = ..., intercept: _Optional[float] = ..., r_squared: _Optional[float] = ..., points: _Optional[int] = ...) -> None: ...

class CapacityTrend(_message.Message):
    __slots__ = ("nominal_wh", "capacity_wh", "by_time", "by_cycle", "fade_wh_per_year", "fade_pct_per_year", "fade_wh_per_cycle", "end_of_life_unix_ms", "equivalent_full_cycles", "cycles", "half_cycles")
    NOMINAL_WH_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_WH_FIELD_NUMBER: _ClassVar[int]
    BY_TIME_FIELD_NUMBER: _ClassVar[int]
    BY_CYCLE_FIELD_NUMBER: _ClassVar[int]
    FADE_WH_PER_YEAR_FIELD_NUMBER: _ClassVar[int]
    FADE_PCT_PER_YEAR_FIELD_NUMBER: _ClassVar[int]
    FADE_WH_PER_CYCLE_FIELD_NUMBER: _ClassVar[int]
    END_OF_LIFE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    EQUIVALENT_FULL_CYCLES_FIELD_NUMBER: _ClassVar[int]
    CYCLES_FIELD_NUMBER: _ClassVar[int]
    HALF_CYCLES_FIELD_NUMBER: _ClassVar[int]
    nominal_wh: float
    capacity_wh: float
    by_time: LinearFit
    by_cycle: LinearFit
    fade_wh_per_year: float
    fade_pct_per_year: float
    fade_wh_per_cycle: float
    end_of_life_unix_ms: int
    equivalent_full_cycles: float
    cycles: _containers.RepeatedCompositeFieldContainer[CycleEstimate]
    half_cycles: _containers.RepeatedCompositeFieldContainer[HalfCycle]
    def __init__(self, nominal_wh: _Optional[float] = ..., capacity_wh: _Optional[float] = ..., by_time: _Optional[_Union[LinearFit, _Mapping]] = ..., by_cycle: _Optional[_Union[LinearFit, _Mapping]] = ..., fade_wh_per_year: _Optional[float] = ..., fade_pct_per_year: _Optional[float] = ..., fade_wh_per_cycle: _Optional[float] = ..., end_of_life_unix_ms: _Optional[int] = ..., equivalent_full_cycles: _Optional[float] = ..., cycles: _Optional[_Iterable[_Union[CycleEstimate, _Mapping]]] = ..., half_cycles: _Optional[_Iterable[_Union[HalfCycle, _Mapping]]] = ...) -> None: ...

class SeriesRequest(_message.Message):
    __slots__ = ("target", "range", "max_points", "resolution", "channels")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    target: Target
    range: TimeRange
    max_points: int
    resolution: Resolution
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., max_points: _Optional[int] = ..., resolution: _Optional[_Union[Resolution, str]] = ..., channels: _Optional[_Iterable[str]] = ...) -> None: ...

class ChannelSeries(_message.Message):
    __slots__ = ("channel", "timestamps_unix_ms", "values")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    channel: str
    timestamps_unix_ms: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, channel: _Optional[str] = ..., timestamps_unix_ms: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class SeriesResponse(_message.Message):
    __slots__ = ("resolution", "points_read", "series")
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_READ_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    resolution: Resolution
    points_read: int
    series: _containers.RepeatedCompositeFieldContainer[ChannelSeries]
    def __init__(self, resolution: _Optional[_Union[Resolution, str]] = ..., points_read: _Optional[int] = ..., series: _Optional[_Iterable[_Union[ChannelSeries, _Mapping]]] = ...) -> None: ...
