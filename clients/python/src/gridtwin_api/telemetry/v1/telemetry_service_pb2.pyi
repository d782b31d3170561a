from gridtwin_api.device.v1 import device_pb2 as _device_pb2
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

class DayBoundaries(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DAY_BOUNDARIES_UNSPECIFIED: _ClassVar[DayBoundaries]
    DAY_BOUNDARIES_LOCAL: _ClassVar[DayBoundaries]
    DAY_BOUNDARIES_UTC: _ClassVar[DayBoundaries]
RESOLUTION_AUTO: Resolution
RESOLUTION_RAW: Resolution
RESOLUTION_ONE_MINUTE: Resolution
RESOLUTION_FIFTEEN_MINUTES: Resolution
RESOLUTION_ONE_HOUR: Resolution
RESOLUTION_ONE_DAY: Resolution
DAY_BOUNDARIES_UNSPECIFIED: DayBoundaries
DAY_BOUNDARIES_LOCAL: DayBoundaries
DAY_BOUNDARIES_UTC: DayBoundaries

class GetLatestSampleRequest(_message.Message):
    __slots__ = ("installation_id",)
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    def __init__(self, installation_id: _Optional[str] = ...) -> None: ...

class GetLatestSampleResponse(_message.Message):
    __slots__ = ("device_id", "sample")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    sample: _device_pb2.Sample
    def __init__(self, device_id: _Optional[str] = ..., sample: _Optional[_Union[_device_pb2.Sample, _Mapping]] = ...) -> None: ...

class QueryRangeRequest(_message.Message):
    __slots__ = ("installation_id", "start_unix_ms", "end_unix_ms", "max_points", "resolution", "page_token", "day_boundaries")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DAY_BOUNDARIES_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    start_unix_ms: int
    end_unix_ms: int
    max_points: int
    resolution: Resolution
    page_token: str
    day_boundaries: DayBoundaries
    def __init__(self, installation_id: _Optional[str] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., max_points: _Optional[int] = ..., resolution: _Optional[_Union[Resolution, str]] = ..., page_token: _Optional[str] = ..., day_boundaries: _Optional[_Union[DayBoundaries, str]] = ...) -> None: ...

class EnergyTotals(_message.Message):
    __slots__ = ("battery_charge_wh", "battery_discharge_wh", "solar_wh", "load_wh", "grid_import_wh", "grid_export_wh", "covered_s", "solar_direct_wh", "site_covered_s", "battery_covered_s", "solar_covered_s", "load_covered_s")
    BATTERY_CHARGE_WH_FIELD_NUMBER: _ClassVar[int]
    BATTERY_DISCHARGE_WH_FIELD_NUMBER: _ClassVar[int]
    SOLAR_WH_FIELD_NUMBER: _ClassVar[int]
    LOAD_WH_FIELD_NUMBER: _ClassVar[int]
    GRID_IMPORT_WH_FIELD_NUMBER: _ClassVar[int]
    GRID_EXPORT_WH_FIELD_NUMBER: _ClassVar[int]
    COVERED_S_FIELD_NUMBER: _ClassVar[int]
    SOLAR_DIRECT_WH_FIELD_NUMBER: _ClassVar[int]
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
    covered_s: float
    solar_direct_wh: float
    site_covered_s: float
    battery_covered_s: float
    solar_covered_s: float
    load_covered_s: float
    def __init__(self, battery_charge_wh: _Optional[float] = ..., battery_discharge_wh: _Optional[float] = ..., solar_wh: _Optional[float] = ..., load_wh: _Optional[float] = ..., grid_import_wh: _Optional[float] = ..., grid_export_wh: _Optional[float] = ..., covered_s: _Optional[float] = ..., solar_direct_wh: _Optional[float] = ..., site_covered_s: _Optional[float] = ..., battery_covered_s: _Optional[float] = ..., solar_covered_s: _Optional[float] = ..., load_covered_s: _Optional[float] = ...) -> None: ...

class SeriesPoint(_message.Message):
    __slots__ = ("timestamp_unix_ms", "site_power_w", "battery_power_w", "solar_power_w", "load_power_w", "state_of_charge_pct", "sample_count", "energy")
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SITE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    BATTERY_POWER_W_FIELD_NUMBER: _ClassVar[int]
    SOLAR_POWER_W_FIELD_NUMBER: _ClassVar[int]
    LOAD_POWER_W_FIELD_NUMBER: _ClassVar[int]
    STATE_OF_CHARGE_PCT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENERGY_FIELD_NUMBER: _ClassVar[int]
    timestamp_unix_ms: int
    site_power_w: float
    battery_power_w: float
    solar_power_w: float
    load_power_w: float
    state_of_charge_pct: float
    sample_count: int
    energy: EnergyTotals
    def __init__(self, timestamp_unix_ms: _Optional[int] = ..., site_power_w: _Optional[float] = ..., battery_power_w: _Optional[float] = ..., solar_power_w: _Optional[float] = ..., load_power_w: _Optional[float] = ..., state_of_charge_pct: _Optional[float] = ..., sample_count: _Optional[int] = ..., energy: _Optional[_Union[EnergyTotals, _Mapping]] = ...) -> None: ...

class QueryRangeResponse(_message.Message):
    __slots__ = ("resolution", "points", "next_page_token", "time_zone")
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    resolution: Resolution
    points: _containers.RepeatedCompositeFieldContainer[SeriesPoint]
    next_page_token: str
    time_zone: str
    def __init__(self, resolution: _Optional[_Union[Resolution, str]] = ..., points: _Optional[_Iterable[_Union[SeriesPoint, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., time_zone: _Optional[str] = ...) -> None: ...

class StreamLiveSamplesRequest(_message.Message):
    __slots__ = ("installation_id",)
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    def __init__(self, installation_id: _Optional[str] = ...) -> None: ...

class LiveSample(_message.Message):
    __slots__ = ("device_id", "sample")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    sample: _device_pb2.Sample
    def __init__(self, device_id: _Optional[str] = ..., sample: _Optional[_Union[_device_pb2.Sample, _Mapping]] = ...) -> None: ...
