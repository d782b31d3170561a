from gridtwin_api.control.v1 import control_pb2 as _control_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_STATE_UNSPECIFIED: _ClassVar[EventState]
    EVENT_STATE_SCHEDULED: _ClassVar[EventState]
    EVENT_STATE_ACTIVE: _ClassVar[EventState]
    EVENT_STATE_COMPLETED: _ClassVar[EventState]
    EVENT_STATE_CANCELLED: _ClassVar[EventState]

class ParticipantStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTICIPANT_STATUS_UNSPECIFIED: _ClassVar[ParticipantStatus]
    PARTICIPANT_STATUS_DISPATCHED: _ClassVar[ParticipantStatus]
    PARTICIPANT_STATUS_ACCEPTED: _ClassVar[ParticipantStatus]
    PARTICIPANT_STATUS_DECLINED: _ClassVar[ParticipantStatus]
    PARTICIPANT_STATUS_OPTED_OUT: _ClassVar[ParticipantStatus]
    PARTICIPANT_STATUS_CANCELLED: _ClassVar[ParticipantStatus]
EVENT_STATE_UNSPECIFIED: EventState
EVENT_STATE_SCHEDULED: EventState
EVENT_STATE_ACTIVE: EventState
EVENT_STATE_COMPLETED: EventState
EVENT_STATE_CANCELLED: EventState
PARTICIPANT_STATUS_UNSPECIFIED: ParticipantStatus
PARTICIPANT_STATUS_DISPATCHED: ParticipantStatus
PARTICIPANT_STATUS_ACCEPTED: ParticipantStatus
PARTICIPANT_STATUS_DECLINED: ParticipantStatus
PARTICIPANT_STATUS_OPTED_OUT: ParticipantStatus
PARTICIPANT_STATUS_CANCELLED: ParticipantStatus

class GridEventSpec(_message.Message):
    __slots__ = ("program", "target_group", "start_unix_ms", "end_unix_ms", "target_power_w", "precharge_s", "rate_per_kwh", "name", "external_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    TARGET_GROUP_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TARGET_POWER_W_FIELD_NUMBER: _ClassVar[int]
    PRECHARGE_S_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    program: str
    target_group: str
    start_unix_ms: int
    end_unix_ms: int
    target_power_w: float
    precharge_s: float
    rate_per_kwh: float
    name: str
    external_id: str
    def __init__(self, program: _Optional[str] = ..., target_group: _Optional[str] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., target_power_w: _Optional[float] = ..., precharge_s: _Optional[float] = ..., rate_per_kwh: _Optional[float] = ..., name: _Optional[str] = ..., external_id: _Optional[str] = ...) -> None: ...

class GridEvent(_message.Message):
    __slots__ = ("event_id", "spec", "state", "revision", "rate_per_kwh", "currency", "fanout_id", "participants", "created_unix_ms", "source")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    FANOUT_ID_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    spec: GridEventSpec
    state: EventState
    revision: int
    rate_per_kwh: str
    currency: str
    fanout_id: str
    participants: int
    created_unix_ms: int
    source: str
    def __init__(self, event_id: _Optional[str] = ..., spec: _Optional[_Union[GridEventSpec, _Mapping]] = ..., state: _Optional[_Union[EventState, str]] = ..., revision: _Optional[int] = ..., rate_per_kwh: _Optional[str] = ..., currency: _Optional[str] = ..., fanout_id: _Optional[str] = ..., participants: _Optional[int] = ..., created_unix_ms: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class CreateEventRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: GridEventSpec
    def __init__(self, spec: _Optional[_Union[GridEventSpec, _Mapping]] = ...) -> None: ...

class UpdateEventRequest(_message.Message):
    __slots__ = ("event_id", "spec")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    spec: GridEventSpec
    def __init__(self, event_id: _Optional[str] = ..., spec: _Optional[_Union[GridEventSpec, _Mapping]] = ...) -> None: ...

class CancelEventRequest(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...

class GetEventRequest(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("include_ended", "page_size", "page_token")
    INCLUDE_ENDED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    include_ended: bool
    page_size: int
    page_token: str
    def __init__(self, include_ended: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[GridEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[GridEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Participant(_message.Message):
    __slots__ = ("installation_id", "power_w", "status", "reason", "command_id")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    power_w: float
    status: ParticipantStatus
    reason: str
    command_id: str
    def __init__(self, installation_id: _Optional[str] = ..., power_w: _Optional[float] = ..., status: _Optional[_Union[ParticipantStatus, str]] = ..., reason: _Optional[str] = ..., command_id: _Optional[str] = ...) -> None: ...

class ListParticipantsRequest(_message.Message):
    __slots__ = ("event_id", "page_size", "page_token")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    page_size: int
    page_token: str
    def __init__(self, event_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListParticipantsResponse(_message.Message):
    __slots__ = ("participants", "next_page_token")
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    participants: _containers.RepeatedCompositeFieldContainer[Participant]
    next_page_token: str
    def __init__(self, participants: _Optional[_Iterable[_Union[Participant, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class OptOutRequest(_message.Message):
    __slots__ = ("event_id", "installation_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    installation_id: str
    def __init__(self, event_id: _Optional[str] = ..., installation_id: _Optional[str] = ...) -> None: ...

class GetEventProgressRequest(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...

class StreamContributionRequest(_message.Message):
    __slots__ = ("path", "installation_id", "interval_ms")
    PATH_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    path: str
    installation_id: str
    interval_ms: int
    def __init__(self, path: _Optional[str] = ..., installation_id: _Optional[str] = ..., interval_ms: _Optional[int] = ...) -> None: ...

class InstallationContribution(_message.Message):
    __slots__ = ("installation_id", "battery_power_w", "discharge_w", "sample_unix_ms", "counted")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    BATTERY_POWER_W_FIELD_NUMBER: _ClassVar[int]
    DISCHARGE_W_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    COUNTED_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    battery_power_w: float
    discharge_w: float
    sample_unix_ms: int
    counted: bool
    def __init__(self, installation_id: _Optional[str] = ..., battery_power_w: _Optional[float] = ..., discharge_w: _Optional[float] = ..., sample_unix_ms: _Optional[int] = ..., counted: _Optional[bool] = ...) -> None: ...

class Contribution(_message.Message):
    __slots__ = ("at_unix_ms", "path", "discharge_w", "installations_reporting", "newest_sample_unix_ms", "installation")
    AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    DISCHARGE_W_FIELD_NUMBER: _ClassVar[int]
    INSTALLATIONS_REPORTING_FIELD_NUMBER: _ClassVar[int]
    NEWEST_SAMPLE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_FIELD_NUMBER: _ClassVar[int]
    at_unix_ms: int
    path: str
    discharge_w: float
    installations_reporting: int
    newest_sample_unix_ms: int
    installation: InstallationContribution
    def __init__(self, at_unix_ms: _Optional[int] = ..., path: _Optional[str] = ..., discharge_w: _Optional[float] = ..., installations_reporting: _Optional[int] = ..., newest_sample_unix_ms: _Optional[int] = ..., installation: _Optional[_Union[InstallationContribution, _Mapping]] = ...) -> None: ...

class GetEventReportRequest(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...

class InstallationEnergy(_message.Message):
    __slots__ = ("installation_id", "status", "discharged_wh", "charged_wh", "samples", "coverage", "compensation")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DISCHARGED_WH_FIELD_NUMBER: _ClassVar[int]
    CHARGED_WH_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    COMPENSATION_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    status: ParticipantStatus
    discharged_wh: float
    charged_wh: float
    samples: int
    coverage: float
    compensation: str
    def __init__(self, installation_id: _Optional[str] = ..., status: _Optional[_Union[ParticipantStatus, str]] = ..., discharged_wh: _Optional[float] = ..., charged_wh: _Optional[float] = ..., samples: _Optional[int] = ..., coverage: _Optional[float] = ..., compensation: _Optional[str] = ...) -> None: ...

class EventReport(_message.Message):
    __slots__ = ("event_id", "start_unix_ms", "end_unix_ms", "rate_per_kwh", "currency", "complete", "discharged_wh", "compensation", "installations")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    DISCHARGED_WH_FIELD_NUMBER: _ClassVar[int]
    COMPENSATION_FIELD_NUMBER: _ClassVar[int]
    INSTALLATIONS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    start_unix_ms: int
    end_unix_ms: int
    rate_per_kwh: str
    currency: str
    complete: bool
    discharged_wh: float
    compensation: str
    installations: _containers.RepeatedCompositeFieldContainer[InstallationEnergy]
    def __init__(self, event_id: _Optional[str] = ..., start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., rate_per_kwh: _Optional[str] = ..., currency: _Optional[str] = ..., complete: _Optional[bool] = ..., discharged_wh: _Optional[float] = ..., compensation: _Optional[str] = ..., installations: _Optional[_Iterable[_Union[InstallationEnergy, _Mapping]]] = ...) -> None: ...
