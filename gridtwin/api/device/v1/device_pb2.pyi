from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GridStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRID_STATUS_UNSPECIFIED: _ClassVar[GridStatus]
    GRID_STATUS_CONNECTED: _ClassVar[GridStatus]
    GRID_STATUS_ISLANDED: _ClassVar[GridStatus]
    GRID_STATUS_TRANSITIONING: _ClassVar[GridStatus]

class OperationMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_MODE_UNSPECIFIED: _ClassVar[OperationMode]
    OPERATION_MODE_SELF_CONSUMPTION: _ClassVar[OperationMode]
    OPERATION_MODE_BACKUP: _ClassVar[OperationMode]
    OPERATION_MODE_AUTONOMOUS: _ClassVar[OperationMode]

class CommandOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMAND_OUTCOME_UNSPECIFIED: _ClassVar[CommandOutcome]
    COMMAND_OUTCOME_ACCEPTED: _ClassVar[CommandOutcome]
    COMMAND_OUTCOME_COMPLETED: _ClassVar[CommandOutcome]
    COMMAND_OUTCOME_REJECTED: _ClassVar[CommandOutcome]
    COMMAND_OUTCOME_EXPIRED: _ClassVar[CommandOutcome]

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_REASON_UNSPECIFIED: _ClassVar[RejectReason]
    REJECT_REASON_NOT_FINITE: _ClassVar[RejectReason]
    REJECT_REASON_TIMESTAMP_IN_FUTURE: _ClassVar[RejectReason]
    REJECT_REASON_TIMESTAMP_TOO_OLD: _ClassVar[RejectReason]
    REJECT_REASON_OUT_OF_RANGE: _ClassVar[RejectReason]
    REJECT_REASON_SEQUENCE_NOT_INCREASING: _ClassVar[RejectReason]
    REJECT_REASON_BATCH_TOO_LARGE: _ClassVar[RejectReason]
    REJECT_REASON_EMPTY_BATCH: _ClassVar[RejectReason]
    REJECT_REASON_RATE_LIMITED: _ClassVar[RejectReason]
    REJECT_REASON_DUPLICATE_TIMESTAMP: _ClassVar[RejectReason]
    REJECT_REASON_NO_SIGNAL: _ClassVar[RejectReason]
    REJECT_REASON_CONFLICTING_RESEND: _ClassVar[RejectReason]
GRID_STATUS_UNSPECIFIED: GridStatus
GRID_STATUS_CONNECTED: GridStatus
GRID_STATUS_ISLANDED: GridStatus
GRID_STATUS_TRANSITIONING: GridStatus
OPERATION_MODE_UNSPECIFIED: OperationMode
OPERATION_MODE_SELF_CONSUMPTION: OperationMode
OPERATION_MODE_BACKUP: OperationMode
OPERATION_MODE_AUTONOMOUS: OperationMode
COMMAND_OUTCOME_UNSPECIFIED: CommandOutcome
COMMAND_OUTCOME_ACCEPTED: CommandOutcome
COMMAND_OUTCOME_COMPLETED: CommandOutcome
COMMAND_OUTCOME_REJECTED: CommandOutcome
COMMAND_OUTCOME_EXPIRED: CommandOutcome
REJECT_REASON_UNSPECIFIED: RejectReason
REJECT_REASON_NOT_FINITE: RejectReason
REJECT_REASON_TIMESTAMP_IN_FUTURE: RejectReason
REJECT_REASON_TIMESTAMP_TOO_OLD: RejectReason
REJECT_REASON_OUT_OF_RANGE: RejectReason
REJECT_REASON_SEQUENCE_NOT_INCREASING: RejectReason
REJECT_REASON_BATCH_TOO_LARGE: RejectReason
REJECT_REASON_EMPTY_BATCH: RejectReason
REJECT_REASON_RATE_LIMITED: RejectReason
REJECT_REASON_DUPLICATE_TIMESTAMP: RejectReason
REJECT_REASON_NO_SIGNAL: RejectReason
REJECT_REASON_CONFLICTING_RESEND: RejectReason

class Sample(_message.Message):
    __slots__ = ("timestamp_unix_ms", "site_power_w", "battery_power_w", "solar_power_w", "load_power_w", "state_of_charge_pct", "grid_status", "extra")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SITE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    BATTERY_POWER_W_FIELD_NUMBER: _ClassVar[int]
    SOLAR_POWER_W_FIELD_NUMBER: _ClassVar[int]
    LOAD_POWER_W_FIELD_NUMBER: _ClassVar[int]
    STATE_OF_CHARGE_PCT_FIELD_NUMBER: _ClassVar[int]
    GRID_STATUS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    timestamp_unix_ms: int
    site_power_w: float
    battery_power_w: float
    solar_power_w: float
    load_power_w: float
    state_of_charge_pct: float
    grid_status: GridStatus
    extra: _containers.ScalarMap[str, float]
    def __init__(self, timestamp_unix_ms: _Optional[int] = ..., site_power_w: _Optional[float] = ..., battery_power_w: _Optional[float] = ..., solar_power_w: _Optional[float] = ..., load_power_w: _Optional[float] = ..., state_of_charge_pct: _Optional[float] = ..., grid_status: _Optional[_Union[GridStatus, str]] = ..., extra: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("device_id", "credential", "firmware_version", "protocol_version")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    credential: str
    firmware_version: str
    protocol_version: int
    def __init__(self, device_id: _Optional[str] = ..., credential: _Optional[str] = ..., firmware_version: _Optional[str] = ..., protocol_version: _Optional[int] = ...) -> None: ...

class TelemetryBatch(_message.Message):
    __slots__ = ("sequence", "samples")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    samples: _containers.RepeatedCompositeFieldContainer[Sample]
    def __init__(self, sequence: _Optional[int] = ..., samples: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ...) -> None: ...

class CommandAck(_message.Message):
    __slots__ = ("command_id", "outcome", "detail")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    outcome: CommandOutcome
    detail: str
    def __init__(self, command_id: _Optional[str] = ..., outcome: _Optional[_Union[CommandOutcome, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class StateReport(_message.Message):
    __slots__ = ("timestamp_unix_ms", "mode", "backup_reserve_pct", "firmware_version", "active_plan_id", "battery_nominal_energy_wh", "battery_max_power_w", "config")
    class ConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BACKUP_RESERVE_PCT_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    BATTERY_NOMINAL_ENERGY_WH_FIELD_NUMBER: _ClassVar[int]
    BATTERY_MAX_POWER_W_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    timestamp_unix_ms: int
    mode: OperationMode
    backup_reserve_pct: float
    firmware_version: str
    active_plan_id: str
    battery_nominal_energy_wh: float
    battery_max_power_w: float
    config: _containers.ScalarMap[str, str]
    def __init__(self, timestamp_unix_ms: _Optional[int] = ..., mode: _Optional[_Union[OperationMode, str]] = ..., backup_reserve_pct: _Optional[float] = ..., firmware_version: _Optional[str] = ..., active_plan_id: _Optional[str] = ..., battery_nominal_energy_wh: _Optional[float] = ..., battery_max_power_w: _Optional[float] = ..., config: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DeviceFrame(_message.Message):
    __slots__ = ("hello", "telemetry", "command_ack", "state_report")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ACK_FIELD_NUMBER: _ClassVar[int]
    STATE_REPORT_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    telemetry: TelemetryBatch
    command_ack: CommandAck
    state_report: StateReport
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., telemetry: _Optional[_Union[TelemetryBatch, _Mapping]] = ..., command_ack: _Optional[_Union[CommandAck, _Mapping]] = ..., state_report: _Optional[_Union[StateReport, _Mapping]] = ...) -> None: ...

class HelloReply(_message.Message):
    __slots__ = ("session_id", "installation_id", "server_time_unix_ms", "max_samples_per_batch", "max_in_flight_batches", "max_clock_skew_s", "max_sample_age_s", "rate_limit_batches_per_s", "rate_limit_burst_batches", "max_frame_bytes", "last_acknowledged_sequence")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLES_PER_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_BATCHES_FIELD_NUMBER: _ClassVar[int]
    MAX_CLOCK_SKEW_S_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLE_AGE_S_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_BATCHES_PER_S_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_BURST_BATCHES_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    LAST_ACKNOWLEDGED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    installation_id: str
    server_time_unix_ms: int
    max_samples_per_batch: int
    max_in_flight_batches: int
    max_clock_skew_s: int
    max_sample_age_s: int
    rate_limit_batches_per_s: float
    rate_limit_burst_batches: int
    max_frame_bytes: int
    last_acknowledged_sequence: int
    def __init__(self, session_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., server_time_unix_ms: _Optional[int] = ..., max_samples_per_batch: _Optional[int] = ..., max_in_flight_batches: _Optional[int] = ..., max_clock_skew_s: _Optional[int] = ..., max_sample_age_s: _Optional[int] = ..., rate_limit_batches_per_s: _Optional[float] = ..., rate_limit_burst_batches: _Optional[int] = ..., max_frame_bytes: _Optional[int] = ..., last_acknowledged_sequence: _Optional[int] = ...) -> None: ...

class SampleRejection(_message.Message):
    __slots__ = ("index", "reason", "detail")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    index: int
    reason: RejectReason
    detail: str
    def __init__(self, index: _Optional[int] = ..., reason: _Optional[_Union[RejectReason, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("sequence", "accepted_samples", "rejections")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    accepted_samples: int
    rejections: _containers.RepeatedCompositeFieldContainer[SampleRejection]
    def __init__(self, sequence: _Optional[int] = ..., accepted_samples: _Optional[int] = ..., rejections: _Optional[_Iterable[_Union[SampleRejection, _Mapping]]] = ...) -> None: ...

class BatchRejected(_message.Message):
    __slots__ = ("sequence", "reason", "detail")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    reason: RejectReason
    detail: str
    def __init__(self, sequence: _Optional[int] = ..., reason: _Optional[_Union[RejectReason, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class SampleNotice(_message.Message):
    __slots__ = ("timestamps_unix_ms", "reason", "detail")
    TIMESTAMPS_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    timestamps_unix_ms: _containers.RepeatedScalarFieldContainer[int]
    reason: RejectReason
    detail: str
    def __init__(self, timestamps_unix_ms: _Optional[_Iterable[int]] = ..., reason: _Optional[_Union[RejectReason, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class ChargeTo(_message.Message):
    __slots__ = ("target_state_of_charge_pct", "max_power_w")
    TARGET_STATE_OF_CHARGE_PCT_FIELD_NUMBER: _ClassVar[int]
    MAX_POWER_W_FIELD_NUMBER: _ClassVar[int]
    target_state_of_charge_pct: float
    max_power_w: float
    def __init__(self, target_state_of_charge_pct: _Optional[float] = ..., max_power_w: _Optional[float] = ...) -> None: ...

class Discharge(_message.Message):
    __slots__ = ("power_w", "floor_state_of_charge_pct")
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    FLOOR_STATE_OF_CHARGE_PCT_FIELD_NUMBER: _ClassVar[int]
    power_w: float
    floor_state_of_charge_pct: float
    def __init__(self, power_w: _Optional[float] = ..., floor_state_of_charge_pct: _Optional[float] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PlanStep(_message.Message):
    __slots__ = ("start_unix_ms", "end_unix_ms", "charge_to", "discharge", "hold")
    START_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CHARGE_TO_FIELD_NUMBER: _ClassVar[int]
    DISCHARGE_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    start_unix_ms: int
    end_unix_ms: int
    charge_to: ChargeTo
    discharge: Discharge
    hold: Hold
    def __init__(self, start_unix_ms: _Optional[int] = ..., end_unix_ms: _Optional[int] = ..., charge_to: _Optional[_Union[ChargeTo, _Mapping]] = ..., discharge: _Optional[_Union[Discharge, _Mapping]] = ..., hold: _Optional[_Union[Hold, _Mapping]] = ...) -> None: ...

class ControlPlan(_message.Message):
    __slots__ = ("plan_id", "steps")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    steps: _containers.RepeatedCompositeFieldContainer[PlanStep]
    def __init__(self, plan_id: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[PlanStep, _Mapping]]] = ...) -> None: ...

class SetMode(_message.Message):
    __slots__ = ("mode",)
    MODE_FIELD_NUMBER: _ClassVar[int]
    mode: OperationMode
    def __init__(self, mode: _Optional[_Union[OperationMode, str]] = ...) -> None: ...

class SetBackupReserve(_message.Message):
    __slots__ = ("backup_reserve_pct",)
    BACKUP_RESERVE_PCT_FIELD_NUMBER: _ClassVar[int]
    backup_reserve_pct: float
    def __init__(self, backup_reserve_pct: _Optional[float] = ...) -> None: ...

class ChangeConfiguration(_message.Message):
    __slots__ = ("config",)
    class ConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _containers.ScalarMap[str, str]
    def __init__(self, config: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UpdateFirmware(_message.Message):
    __slots__ = ("version", "url", "sha256")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    version: str
    url: str
    sha256: str
    def __init__(self, version: _Optional[str] = ..., url: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("command_id", "expires_unix_ms", "control_plan", "set_mode", "set_backup_reserve", "change_configuration", "update_firmware", "issued_unix_ms")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_PLAN_FIELD_NUMBER: _ClassVar[int]
    SET_MODE_FIELD_NUMBER: _ClassVar[int]
    SET_BACKUP_RESERVE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    expires_unix_ms: int
    control_plan: ControlPlan
    set_mode: SetMode
    set_backup_reserve: SetBackupReserve
    change_configuration: ChangeConfiguration
    update_firmware: UpdateFirmware
    issued_unix_ms: int
    def __init__(self, command_id: _Optional[str] = ..., expires_unix_ms: _Optional[int] = ..., control_plan: _Optional[_Union[ControlPlan, _Mapping]] = ..., set_mode: _Optional[_Union[SetMode, _Mapping]] = ..., set_backup_reserve: _Optional[_Union[SetBackupReserve, _Mapping]] = ..., change_configuration: _Optional[_Union[ChangeConfiguration, _Mapping]] = ..., update_firmware: _Optional[_Union[UpdateFirmware, _Mapping]] = ..., issued_unix_ms: _Optional[int] = ...) -> None: ...

class CloudFrame(_message.Message):
    __slots__ = ("hello_reply", "ack", "batch_rejected", "command", "sample_notice")
    HELLO_REPLY_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    BATCH_REJECTED_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_NOTICE_FIELD_NUMBER: _ClassVar[int]
    hello_reply: HelloReply
    ack: Ack
    batch_rejected: BatchRejected
    command: Command
    sample_notice: SampleNotice
    def __init__(self, hello_reply: _Optional[_Union[HelloReply, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., batch_rejected: _Optional[_Union[BatchRejected, _Mapping]] = ..., command: _Optional[_Union[Command, _Mapping]] = ..., sample_notice: _Optional[_Union[SampleNotice, _Mapping]] = ...) -> None: ...
