from gridtwin.api.device.v1 import device_pb2 as _device_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_CRITICAL: _ClassVar[Severity]

class AlertState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_STATE_UNSPECIFIED: _ClassVar[AlertState]
    ALERT_STATE_RAISED: _ClassVar[AlertState]
    ALERT_STATE_ONGOING: _ClassVar[AlertState]
    ALERT_STATE_CLEARED: _ClassVar[AlertState]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_CSV: _ClassVar[ExportFormat]
    EXPORT_FORMAT_JSON: _ClassVar[ExportFormat]
SEVERITY_UNSPECIFIED: Severity
SEVERITY_INFO: Severity
SEVERITY_WARNING: Severity
SEVERITY_CRITICAL: Severity
ALERT_STATE_UNSPECIFIED: AlertState
ALERT_STATE_RAISED: AlertState
ALERT_STATE_ONGOING: AlertState
ALERT_STATE_CLEARED: AlertState
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_CSV: ExportFormat
EXPORT_FORMAT_JSON: ExportFormat

class Alert(_message.Message):
    __slots__ = ("alert_id", "installation_id", "rule", "severity", "state", "first_seen_unix_ms", "last_seen_unix_ms", "cleared_unix_ms", "samples", "details_json")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CLEARED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    installation_id: str
    rule: str
    severity: Severity
    state: AlertState
    first_seen_unix_ms: int
    last_seen_unix_ms: int
    cleared_unix_ms: int
    samples: int
    details_json: str
    def __init__(self, alert_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., rule: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ..., state: _Optional[_Union[AlertState, str]] = ..., first_seen_unix_ms: _Optional[int] = ..., last_seen_unix_ms: _Optional[int] = ..., cleared_unix_ms: _Optional[int] = ..., samples: _Optional[int] = ..., details_json: _Optional[str] = ...) -> None: ...

class ReportedState(_message.Message):
    __slots__ = ("device_id", "timestamp_unix_ms", "site_power_w", "battery_power_w", "solar_power_w", "load_power_w", "state_of_charge_pct", "grid_status", "mode", "last_reported")
    class LastReportedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ReportedValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ReportedValue, _Mapping]] = ...) -> None: ...
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SITE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    BATTERY_POWER_W_FIELD_NUMBER: _ClassVar[int]
    SOLAR_POWER_W_FIELD_NUMBER: _ClassVar[int]
    LOAD_POWER_W_FIELD_NUMBER: _ClassVar[int]
    STATE_OF_CHARGE_PCT_FIELD_NUMBER: _ClassVar[int]
    GRID_STATUS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LAST_REPORTED_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    timestamp_unix_ms: int
    site_power_w: float
    battery_power_w: float
    solar_power_w: float
    load_power_w: float
    state_of_charge_pct: float
    grid_status: _device_pb2.GridStatus
    mode: _device_pb2.OperationMode
    last_reported: _containers.MessageMap[str, ReportedValue]
    def __init__(self, device_id: _Optional[str] = ..., timestamp_unix_ms: _Optional[int] = ..., site_power_w: _Optional[float] = ..., battery_power_w: _Optional[float] = ..., solar_power_w: _Optional[float] = ..., load_power_w: _Optional[float] = ..., state_of_charge_pct: _Optional[float] = ..., grid_status: _Optional[_Union[_device_pb2.GridStatus, str]] = ..., mode: _Optional[_Union[_device_pb2.OperationMode, str]] = ..., last_reported: _Optional[_Mapping[str, ReportedValue]] = ...) -> None: ...

class ReportedValue(_message.Message):
    __slots__ = ("value", "timestamp_unix_ms")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    value: float
    timestamp_unix_ms: int
    def __init__(self, value: _Optional[float] = ..., timestamp_unix_ms: _Optional[int] = ...) -> None: ...

class DesiredState(_message.Message):
    __slots__ = ("plan_id", "plan_source", "active_action", "target_state_of_charge_pct", "revision", "issued_unix_ms", "reported_plan_id", "state_reported_unix_ms")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_STATE_OF_CHARGE_PCT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ISSUED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_REPORTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    plan_source: str
    active_action: str
    target_state_of_charge_pct: float
    revision: int
    issued_unix_ms: int
    reported_plan_id: str
    state_reported_unix_ms: int
    def __init__(self, plan_id: _Optional[str] = ..., plan_source: _Optional[str] = ..., active_action: _Optional[str] = ..., target_state_of_charge_pct: _Optional[float] = ..., revision: _Optional[int] = ..., issued_unix_ms: _Optional[int] = ..., reported_plan_id: _Optional[str] = ..., state_reported_unix_ms: _Optional[int] = ...) -> None: ...

class BatteryEnergy(_message.Message):
    __slots__ = ("anchor", "anchor_unix_ms", "net_out_wh", "throughput_wh")
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    NET_OUT_WH_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_WH_FIELD_NUMBER: _ClassVar[int]
    anchor: str
    anchor_unix_ms: int
    net_out_wh: float
    throughput_wh: float
    def __init__(self, anchor: _Optional[str] = ..., anchor_unix_ms: _Optional[int] = ..., net_out_wh: _Optional[float] = ..., throughput_wh: _Optional[float] = ...) -> None: ...

class Twin(_message.Message):
    __slots__ = ("installation_id", "version", "reported", "desired", "energy", "open_alerts", "samples_applied", "samples_ignored", "samples_rejected", "vpp_event_id", "stormwatch", "vpp")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REPORTED_FIELD_NUMBER: _ClassVar[int]
    DESIRED_FIELD_NUMBER: _ClassVar[int]
    ENERGY_FIELD_NUMBER: _ClassVar[int]
    OPEN_ALERTS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_APPLIED_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_IGNORED_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_REJECTED_FIELD_NUMBER: _ClassVar[int]
    VPP_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STORMWATCH_FIELD_NUMBER: _ClassVar[int]
    VPP_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    version: int
    reported: ReportedState
    desired: DesiredState
    energy: BatteryEnergy
    open_alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    samples_applied: int
    samples_ignored: int
    samples_rejected: int
    vpp_event_id: str
    stormwatch: StormWatch
    vpp: VppParticipation
    def __init__(self, installation_id: _Optional[str] = ..., version: _Optional[int] = ..., reported: _Optional[_Union[ReportedState, _Mapping]] = ..., desired: _Optional[_Union[DesiredState, _Mapping]] = ..., energy: _Optional[_Union[BatteryEnergy, _Mapping]] = ..., open_alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., samples_applied: _Optional[int] = ..., samples_ignored: _Optional[int] = ..., samples_rejected: _Optional[int] = ..., vpp_event_id: _Optional[str] = ..., stormwatch: _Optional[_Union[StormWatch, _Mapping]] = ..., vpp: _Optional[_Union[VppParticipation, _Mapping]] = ...) -> None: ...

class VppParticipation(_message.Message):
    __slots__ = ("event_id", "status", "start_unix_ms", "end_unix_ms", "power_w", "program", "reason")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    status: str
    start_unix_ms: int
    end_unix_ms: int
    power_w: float
    program: str
    reason: str
    def __init__(self, event_id: _Optional[str] = ..., status: _Optional[str] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., power_w: _Optional[float] = ..., program: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StormWatch(_message.Message):
    __slots__ = ("active", "alert_id", "event", "headline", "until_unix_ms", "charge_complete_by_unix_ms", "deferred_for_vpp", "alert_ids")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HEADLINE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CHARGE_COMPLETE_BY_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_FOR_VPP_FIELD_NUMBER: _ClassVar[int]
    ALERT_IDS_FIELD_NUMBER: _ClassVar[int]
    active: bool
    alert_id: str
    event: str
    headline: str
    until_unix_ms: int
    charge_complete_by_unix_ms: int
    deferred_for_vpp: bool
    alert_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, active: _Optional[bool] = ..., alert_id: _Optional[str] = ..., event: _Optional[str] = ..., headline: _Optional[str] = ..., until_unix_ms: _Optional[int] = ..., charge_complete_by_unix_ms: _Optional[int] = ..., deferred_for_vpp: _Optional[bool] = ..., alert_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetTwinRequest(_message.Message):
    __slots__ = ("installation_id",)
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    def __init__(self, installation_id: _Optional[str] = ...) -> None: ...

class StreamTwinRequest(_message.Message):
    __slots__ = ("installation_id", "min_interval_ms")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    min_interval_ms: int
    def __init__(self, installation_id: _Optional[str] = ..., min_interval_ms: _Optional[int] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ("installation_id", "rule", "min_severity", "states", "start_unix_ms", "end_unix_ms", "page_size", "page_token")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    rule: str
    min_severity: Severity
    states: _containers.RepeatedScalarFieldContainer[AlertState]
    start_unix_ms: int
    end_unix_ms: int
    page_size: int
    page_token: str
    def __init__(self, installation_id: _Optional[str] = ..., rule: _Optional[str] = ..., min_severity: _Optional[_Union[Severity, str]] = ..., states: _Optional[_Iterable[_Union[AlertState, str]]] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ("alerts", "next_page_token")
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    next_page_token: str
    def __init__(self, alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExportAlertLogRequest(_message.Message):
    __slots__ = ("installation_id", "start_unix_ms", "end_unix_ms", "format")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    start_unix_ms: int
    end_unix_ms: int
    format: ExportFormat
    def __init__(self, installation_id: _Optional[str] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., format: _Optional[_Union[ExportFormat, str]] = ...) -> None: ...

class ExportChunk(_message.Message):
    __slots__ = ("data", "content_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...

class OptOutOfStormRequest(_message.Message):
    __slots__ = ("installation_id", "alert_id")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    alert_id: str
    def __init__(self, installation_id: _Optional[str] = ..., alert_id: _Optional[str] = ...) -> None: ...

class ListNotificationsRequest(_message.Message):
    __slots__ = ("installation_id", "limit", "page_size", "page_token")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    limit: int
    page_size: int
    page_token: str
    def __init__(self, installation_id: _Optional[str] = ..., limit: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("notification_id", "kind", "alert_id", "title", "body", "at_unix_ms")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    kind: str
    alert_id: str
    title: str
    body: str
    at_unix_ms: int
    def __init__(self, notification_id: _Optional[str] = ..., kind: _Optional[str] = ..., alert_id: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., at_unix_ms: _Optional[int] = ...) -> None: ...

class ListNotificationsResponse(_message.Message):
    __slots__ = ("notifications", "next_page_token")
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    notifications: _containers.RepeatedCompositeFieldContainer[Notification]
    next_page_token: str
    def __init__(self, notifications: _Optional[_Iterable[_Union[Notification, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
