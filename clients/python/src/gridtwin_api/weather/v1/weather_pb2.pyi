from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_TYPE_UNSPECIFIED: _ClassVar[MessageType]
    MESSAGE_TYPE_ALERT: _ClassVar[MessageType]
    MESSAGE_TYPE_UPDATE: _ClassVar[MessageType]
    MESSAGE_TYPE_CANCEL: _ClassVar[MessageType]

class StormWatchState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STORM_WATCH_STATE_UNSPECIFIED: _ClassVar[StormWatchState]
    STORM_WATCH_STATE_NOT_WATCHING: _ClassVar[StormWatchState]
    STORM_WATCH_STATE_WATCHING: _ClassVar[StormWatchState]
    STORM_WATCH_STATE_DEFERRED_FOR_VPP: _ClassVar[StormWatchState]
    STORM_WATCH_STATE_OPTED_OUT: _ClassVar[StormWatchState]
    STORM_WATCH_STATE_ENDED: _ClassVar[StormWatchState]
    STORM_WATCH_STATE_DISABLED: _ClassVar[StormWatchState]
MESSAGE_TYPE_UNSPECIFIED: MessageType
MESSAGE_TYPE_ALERT: MessageType
MESSAGE_TYPE_UPDATE: MessageType
MESSAGE_TYPE_CANCEL: MessageType
STORM_WATCH_STATE_UNSPECIFIED: StormWatchState
STORM_WATCH_STATE_NOT_WATCHING: StormWatchState
STORM_WATCH_STATE_WATCHING: StormWatchState
STORM_WATCH_STATE_DEFERRED_FOR_VPP: StormWatchState
STORM_WATCH_STATE_OPTED_OUT: StormWatchState
STORM_WATCH_STATE_ENDED: StormWatchState
STORM_WATCH_STATE_DISABLED: StormWatchState

class BoundingBox(_message.Message):
    __slots__ = ("min_longitude_deg", "min_latitude_deg", "max_longitude_deg", "max_latitude_deg")
    MIN_LONGITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    MIN_LATITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    MAX_LONGITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    MAX_LATITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    min_longitude_deg: float
    min_latitude_deg: float
    max_longitude_deg: float
    max_latitude_deg: float
    def __init__(self, min_longitude_deg: _Optional[float] = ..., min_latitude_deg: _Optional[float] = ..., max_longitude_deg: _Optional[float] = ..., max_latitude_deg: _Optional[float] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("alert_id", "event", "message_type", "severity", "urgency", "certainty", "sent_unix_ms", "onset_unix_ms", "expires_unix_ms", "ends_unix_ms", "references", "area_wkt", "bbox", "zones", "headline", "sender_name", "area_desc", "area_unknown", "unresolved_zones")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    CERTAINTY_FIELD_NUMBER: _ClassVar[int]
    SENT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ONSET_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ENDS_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    AREA_WKT_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    ZONES_FIELD_NUMBER: _ClassVar[int]
    HEADLINE_FIELD_NUMBER: _ClassVar[int]
    SENDER_NAME_FIELD_NUMBER: _ClassVar[int]
    AREA_DESC_FIELD_NUMBER: _ClassVar[int]
    AREA_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    UNRESOLVED_ZONES_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    event: str
    message_type: MessageType
    severity: str
    urgency: str
    certainty: str
    sent_unix_ms: int
    onset_unix_ms: int
    expires_unix_ms: int
    ends_unix_ms: int
    references: _containers.RepeatedScalarFieldContainer[str]
    area_wkt: str
    bbox: BoundingBox
    zones: _containers.RepeatedScalarFieldContainer[str]
    headline: str
    sender_name: str
    area_desc: str
    area_unknown: bool
    unresolved_zones: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, alert_id: _Optional[str] = ..., event: _Optional[str] = ..., message_type: _Optional[_Union[MessageType, str]] = ..., severity: _Optional[str] = ..., urgency: _Optional[str] = ..., certainty: _Optional[str] = ..., sent_unix_ms: _Optional[int] = ..., onset_unix_ms: _Optional[int] = ..., expires_unix_ms: _Optional[int] = ..., ends_unix_ms: _Optional[int] = ..., references: _Optional[_Iterable[str]] = ..., area_wkt: _Optional[str] = ..., bbox: _Optional[_Union[BoundingBox, _Mapping]] = ..., zones: _Optional[_Iterable[str]] = ..., headline: _Optional[str] = ..., sender_name: _Optional[str] = ..., area_desc: _Optional[str] = ..., area_unknown: _Optional[bool] = ..., unresolved_zones: _Optional[_Iterable[str]] = ...) -> None: ...

class ListActiveAlertsRequest(_message.Message):
    __slots__ = ("bbox", "page_size", "page_token")
    BBOX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    bbox: BoundingBox
    page_size: int
    page_token: str
    def __init__(self, bbox: _Optional[_Union[BoundingBox, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListActiveAlertsResponse(_message.Message):
    __slots__ = ("alerts", "next_page_token")
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    next_page_token: str
    def __init__(self, alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StreamAlertChangesRequest(_message.Message):
    __slots__ = ("after_seq",)
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    def __init__(self, after_seq: _Optional[int] = ...) -> None: ...

class AlertChange(_message.Message):
    __slots__ = ("seq", "kind", "alert", "at_unix_ms", "replaces", "reason", "cancelled_by")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[AlertChange.Kind]
        KIND_ACTIVATED: _ClassVar[AlertChange.Kind]
        KIND_UPDATED: _ClassVar[AlertChange.Kind]
        KIND_ENDED: _ClassVar[AlertChange.Kind]
    KIND_UNSPECIFIED: AlertChange.Kind
    KIND_ACTIVATED: AlertChange.Kind
    KIND_UPDATED: AlertChange.Kind
    KIND_ENDED: AlertChange.Kind
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REPLACES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_BY_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: AlertChange.Kind
    alert: Alert
    at_unix_ms: int
    replaces: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    cancelled_by: str
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[_Union[AlertChange.Kind, str]] = ..., alert: _Optional[_Union[Alert, _Mapping]] = ..., at_unix_ms: _Optional[int] = ..., replaces: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., cancelled_by: _Optional[str] = ...) -> None: ...

class ListAlertChangesRequest(_message.Message):
    __slots__ = ("after_seq", "limit")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    limit: int
    def __init__(self, after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListAlertChangesResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[AlertChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[AlertChange, _Mapping]]] = ...) -> None: ...

class GetAlertRequest(_message.Message):
    __slots__ = ("alert_id",)
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    def __init__(self, alert_id: _Optional[str] = ...) -> None: ...

class StoredAlert(_message.Message):
    __slots__ = ("alert", "state", "ended_unix_ms", "superseded_by")
    ALERT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ENDED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_BY_FIELD_NUMBER: _ClassVar[int]
    alert: Alert
    state: str
    ended_unix_ms: int
    superseded_by: str
    def __init__(self, alert: _Optional[_Union[Alert, _Mapping]] = ..., state: _Optional[str] = ..., ended_unix_ms: _Optional[int] = ..., superseded_by: _Optional[str] = ...) -> None: ...

class ListAffectedInstallationsRequest(_message.Message):
    __slots__ = ("alert_id", "page_size", "page_token")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    page_size: int
    page_token: str
    def __init__(self, alert_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class AffectedInstallation(_message.Message):
    __slots__ = ("installation_id", "state", "watched_alert_id", "until_unix_ms")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WATCHED_ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    UNTIL_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    state: StormWatchState
    watched_alert_id: str
    until_unix_ms: int
    def __init__(self, installation_id: _Optional[str] = ..., state: _Optional[_Union[StormWatchState, str]] = ..., watched_alert_id: _Optional[str] = ..., until_unix_ms: _Optional[int] = ...) -> None: ...

class StormWatchStateCount(_message.Message):
    __slots__ = ("state", "installations")
    STATE_FIELD_NUMBER: _ClassVar[int]
    INSTALLATIONS_FIELD_NUMBER: _ClassVar[int]
    state: StormWatchState
    installations: int
    def __init__(self, state: _Optional[_Union[StormWatchState, str]] = ..., installations: _Optional[int] = ...) -> None: ...

class ListAffectedInstallationsResponse(_message.Message):
    __slots__ = ("installations", "counts", "total", "next_page_token", "area_unknown")
    INSTALLATIONS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AREA_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    installations: _containers.RepeatedCompositeFieldContainer[AffectedInstallation]
    counts: _containers.RepeatedCompositeFieldContainer[StormWatchStateCount]
    total: int
    next_page_token: str
    area_unknown: bool
    def __init__(self, installations: _Optional[_Iterable[_Union[AffectedInstallation, _Mapping]]] = ..., counts: _Optional[_Iterable[_Union[StormWatchStateCount, _Mapping]]] = ..., total: _Optional[int] = ..., next_page_token: _Optional[str] = ..., area_unknown: _Optional[bool] = ...) -> None: ...
