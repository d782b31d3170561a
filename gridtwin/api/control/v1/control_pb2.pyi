from gridtwin.api.device.v1 import device_pb2 as _device_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CommandKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMAND_KIND_UNSPECIFIED: _ClassVar[CommandKind]
    COMMAND_KIND_CONTROL_PLAN: _ClassVar[CommandKind]
    COMMAND_KIND_SET_MODE: _ClassVar[CommandKind]
    COMMAND_KIND_SET_BACKUP_RESERVE: _ClassVar[CommandKind]
    COMMAND_KIND_CHANGE_CONFIGURATION: _ClassVar[CommandKind]
    COMMAND_KIND_UPDATE_FIRMWARE: _ClassVar[CommandKind]

class CommandState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMAND_STATE_UNSPECIFIED: _ClassVar[CommandState]
    COMMAND_STATE_QUEUED: _ClassVar[CommandState]
    COMMAND_STATE_SENT: _ClassVar[CommandState]
    COMMAND_STATE_ACKNOWLEDGED: _ClassVar[CommandState]
    COMMAND_STATE_FAILED: _ClassVar[CommandState]
    COMMAND_STATE_EXPIRED: _ClassVar[CommandState]
    COMMAND_STATE_SUPERSEDED: _ClassVar[CommandState]
    COMMAND_STATE_CANCELLED: _ClassVar[CommandState]
COMMAND_KIND_UNSPECIFIED: CommandKind
COMMAND_KIND_CONTROL_PLAN: CommandKind
COMMAND_KIND_SET_MODE: CommandKind
COMMAND_KIND_SET_BACKUP_RESERVE: CommandKind
COMMAND_KIND_CHANGE_CONFIGURATION: CommandKind
COMMAND_KIND_UPDATE_FIRMWARE: CommandKind
COMMAND_STATE_UNSPECIFIED: CommandState
COMMAND_STATE_QUEUED: CommandState
COMMAND_STATE_SENT: CommandState
COMMAND_STATE_ACKNOWLEDGED: CommandState
COMMAND_STATE_FAILED: CommandState
COMMAND_STATE_EXPIRED: CommandState
COMMAND_STATE_SUPERSEDED: CommandState
COMMAND_STATE_CANCELLED: CommandState

class CommandSpec(_message.Message):
    __slots__ = ("control_plan", "set_mode", "set_backup_reserve", "change_configuration", "update_firmware")
    CONTROL_PLAN_FIELD_NUMBER: _ClassVar[int]
    SET_MODE_FIELD_NUMBER: _ClassVar[int]
    SET_BACKUP_RESERVE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    control_plan: _device_pb2.ControlPlan
    set_mode: _device_pb2.SetMode
    set_backup_reserve: _device_pb2.SetBackupReserve
    change_configuration: _device_pb2.ChangeConfiguration
    update_firmware: _device_pb2.UpdateFirmware
    def __init__(self, control_plan: _Optional[_Union[_device_pb2.ControlPlan, _Mapping]] = ..., set_mode: _Optional[_Union[_device_pb2.SetMode, _Mapping]] = ..., set_backup_reserve: _Optional[_Union[_device_pb2.SetBackupReserve, _Mapping]] = ..., change_configuration: _Optional[_Union[_device_pb2.ChangeConfiguration, _Mapping]] = ..., update_firmware: _Optional[_Union[_device_pb2.UpdateFirmware, _Mapping]] = ...) -> None: ...

class SubmitCommandRequest(_message.Message):
    __slots__ = ("device_id", "installation_id", "spec", "ttl_s", "idempotency_key", "source")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    installation_id: str
    spec: CommandSpec
    ttl_s: float
    idempotency_key: str
    source: str
    def __init__(self, device_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., spec: _Optional[_Union[CommandSpec, _Mapping]] = ..., ttl_s: _Optional[float] = ..., idempotency_key: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class SubmitCommandResponse(_message.Message):
    __slots__ = ("command", "deduplicated")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    command: Command
    deduplicated: bool
    def __init__(self, command: _Optional[_Union[Command, _Mapping]] = ..., deduplicated: _Optional[bool] = ...) -> None: ...

class SubmitGroupCommandRequest(_message.Message):
    __slots__ = ("group_path", "spec", "ttl_s", "idempotency_key", "source")
    GROUP_PATH_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    group_path: str
    spec: CommandSpec
    ttl_s: float
    idempotency_key: str
    source: str
    def __init__(self, group_path: _Optional[str] = ..., spec: _Optional[_Union[CommandSpec, _Mapping]] = ..., ttl_s: _Optional[float] = ..., idempotency_key: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class SubmitGroupCommandResponse(_message.Message):
    __slots__ = ("fanout_id", "total", "deduplicated")
    FANOUT_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    fanout_id: str
    total: int
    deduplicated: bool
    def __init__(self, fanout_id: _Optional[str] = ..., total: _Optional[int] = ..., deduplicated: _Optional[bool] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("command_id", "device_id", "installation_id", "kind", "state", "spec", "source", "idempotency_key", "fanout_id", "attempts", "outcome", "detail", "superseded_by", "created_unix_ms", "expires_unix_ms", "last_sent_unix_ms", "acknowledged_unix_ms", "completed_unix_ms", "finished_unix_ms")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    FANOUT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_SENT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    device_id: str
    installation_id: str
    kind: CommandKind
    state: CommandState
    spec: CommandSpec
    source: str
    idempotency_key: str
    fanout_id: str
    attempts: int
    outcome: _device_pb2.CommandOutcome
    detail: str
    superseded_by: str
    created_unix_ms: int
    expires_unix_ms: int
    last_sent_unix_ms: int
    acknowledged_unix_ms: int
    completed_unix_ms: int
    finished_unix_ms: int
    def __init__(self, command_id: _Optional[str] = ..., device_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., kind: _Optional[_Union[CommandKind, str]] = ..., state: _Optional[_Union[CommandState, str]] = ..., spec: _Optional[_Union[CommandSpec, _Mapping]] = ..., source: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., fanout_id: _Optional[str] = ..., attempts: _Optional[int] = ..., outcome: _Optional[_Union[_device_pb2.CommandOutcome, str]] = ..., detail: _Optional[str] = ..., superseded_by: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., expires_unix_ms: _Optional[int] = ..., last_sent_unix_ms: _Optional[int] = ..., acknowledged_unix_ms: _Optional[int] = ..., completed_unix_ms: _Optional[int] = ..., finished_unix_ms: _Optional[int] = ...) -> None: ...

class GetCommandRequest(_message.Message):
    __slots__ = ("command_id",)
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    def __init__(self, command_id: _Optional[str] = ...) -> None: ...

class ListCommandsRequest(_message.Message):
    __slots__ = ("installation_id", "page_size", "page_token", "states")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    page_size: int
    page_token: str
    states: _containers.RepeatedScalarFieldContainer[CommandState]
    def __init__(self, installation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., states: _Optional[_Iterable[_Union[CommandState, str]]] = ...) -> None: ...

class ListCommandsResponse(_message.Message):
    __slots__ = ("commands", "next_page_token")
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedCompositeFieldContainer[Command]
    next_page_token: str
    def __init__(self, commands: _Optional[_Iterable[_Union[Command, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetFanOutProgressRequest(_message.Message):
    __slots__ = ("fanout_id", "max_failures")
    FANOUT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURES_FIELD_NUMBER: _ClassVar[int]
    fanout_id: str
    max_failures: int
    def __init__(self, fanout_id: _Optional[str] = ..., max_failures: _Optional[int] = ...) -> None: ...

class StreamFanOutProgressRequest(_message.Message):
    __slots__ = ("fanout_id", "max_failures", "interval_ms")
    FANOUT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURES_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    fanout_id: str
    max_failures: int
    interval_ms: int
    def __init__(self, fanout_id: _Optional[str] = ..., max_failures: _Optional[int] = ..., interval_ms: _Optional[int] = ...) -> None: ...

class StateCount(_message.Message):
    __slots__ = ("state", "count")
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    state: CommandState
    count: int
    def __init__(self, state: _Optional[_Union[CommandState, str]] = ..., count: _Optional[int] = ...) -> None: ...

class FanOutFailure(_message.Message):
    __slots__ = ("command_id", "device_id", "installation_id", "state", "outcome", "detail")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    device_id: str
    installation_id: str
    state: CommandState
    outcome: _device_pb2.CommandOutcome
    detail: str
    def __init__(self, command_id: _Optional[str] = ..., device_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., state: _Optional[_Union[CommandState, str]] = ..., outcome: _Optional[_Union[_device_pb2.CommandOutcome, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class FanOutProgress(_message.Message):
    __slots__ = ("fanout_id", "group_path", "source", "total", "counts", "pending", "acknowledged", "completed", "unsuccessful", "failures", "done", "created_unix_ms", "last_acknowledged_unix_ms")
    FANOUT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_PATH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    UNSUCCESSFUL_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_ACKNOWLEDGED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    fanout_id: str
    group_path: str
    source: str
    total: int
    counts: _containers.RepeatedCompositeFieldContainer[StateCount]
    pending: int
    acknowledged: int
    completed: int
    unsuccessful: int
    failures: _containers.RepeatedCompositeFieldContainer[FanOutFailure]
    done: bool
    created_unix_ms: int
    last_acknowledged_unix_ms: int
    def __init__(self, fanout_id: _Optional[str] = ..., group_path: _Optional[str] = ..., source: _Optional[str] = ..., total: _Optional[int] = ..., counts: _Optional[_Iterable[_Union[StateCount, _Mapping]]] = ..., pending: _Optional[int] = ..., acknowledged: _Optional[int] = ..., completed: _Optional[int] = ..., unsuccessful: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[FanOutFailure, _Mapping]]] = ..., done: _Optional[bool] = ..., created_unix_ms: _Optional[int] = ..., last_acknowledged_unix_ms: _Optional[int] = ...) -> None: ...

class CancelCommandRequest(_message.Message):
    __slots__ = ("command_id",)
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    def __init__(self, command_id: _Optional[str] = ...) -> None: ...

class CancelFanOutRequest(_message.Message):
    __slots__ = ("fanout_id",)
    FANOUT_ID_FIELD_NUMBER: _ClassVar[int]
    fanout_id: str
    def __init__(self, fanout_id: _Optional[str] = ...) -> None: ...

class GatewayCommandBatch(_message.Message):
    __slots__ = ("gateway_id", "commands", "notices")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    commands: _containers.RepeatedCompositeFieldContainer[DeviceCommand]
    notices: _containers.RepeatedCompositeFieldContainer[DeviceSampleNotice]
    def __init__(self, gateway_id: _Optional[str] = ..., commands: _Optional[_Iterable[_Union[DeviceCommand, _Mapping]]] = ..., notices: _Optional[_Iterable[_Union[DeviceSampleNotice, _Mapping]]] = ...) -> None: ...

class DeviceSampleNotice(_message.Message):
    __slots__ = ("device_id", "notice")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    notice: _device_pb2.SampleNotice
    def __init__(self, device_id: _Optional[str] = ..., notice: _Optional[_Union[_device_pb2.SampleNotice, _Mapping]] = ...) -> None: ...

class DeviceCommand(_message.Message):
    __slots__ = ("device_id", "session_id", "command")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    session_id: str
    command: _device_pb2.Command
    def __init__(self, device_id: _Optional[str] = ..., session_id: _Optional[str] = ..., command: _Optional[_Union[_device_pb2.Command, _Mapping]] = ...) -> None: ...
