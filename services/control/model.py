"""The command domain: ids, states, what a command asks (specs) and the stored record.

Standard library only: no protobuf, no SQL (converters live in `convert.py` and `store.py`).
Times are integer milliseconds since the Unix epoch (`*_ms`); powers in W, charge in %.

Errors raised to callers (`ControlError`):

    ControlError
     ├── InvalidArgument    malformed request (names the field)
     ├── NotFound           unknown device, installation, group, command or fan-out
     ├── Conflict           an idempotency key reused for a different request
     └── NotCancellable     cancelling a command that has already finished
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NewType

from gridtwin import errors

CommandId = NewType("CommandId", str)
FanOutId = NewType("FanOutId", str)
DeviceId = NewType("DeviceId", str)
InstallationId = NewType("InstallationId", str)


class ControlError(errors.GridtwinError):
    """Root of the errors the control service raises to its callers; each is also the kernel's
    error of its status (gridtwin/errors.py)."""


class InvalidArgument(ControlError, errors.InvalidArgument):
    def __init__(self, field_name: str, problem: str) -> None:
        errors.InvalidArgument.__init__(self, field_name, problem)


class NotFound(ControlError, errors.NotFound):
    pass


class Conflict(ControlError, errors.AlreadyExists):
    """An idempotency key reused with a different command."""


class NotCancellable(ControlError, errors.FailedPrecondition):
    pass


class CommandState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"

    @property
    def pending(self) -> bool:
        return self in (CommandState.QUEUED, CommandState.SENT)


PENDING = frozenset({CommandState.QUEUED, CommandState.SENT})
UNSUCCESSFUL = frozenset({CommandState.FAILED, CommandState.EXPIRED, CommandState.SUPERSEDED,
                          CommandState.CANCELLED})


class Outcome(enum.StrEnum):
    """What a device answered (gridtwin.device.v1.CommandOutcome)."""

    ACCEPTED = "accepted"     # taken; a plan will run
    COMPLETED = "completed"   # done (immediate commands, or a plan that ran to its end)
    REJECTED = "rejected"     # invalid or unsupported on the device
    EXPIRED = "expired"       # arrived after its expiry


class OperationMode(enum.StrEnum):
    SELF_CONSUMPTION = "self_consumption"
    BACKUP = "backup"
    AUTONOMOUS = "autonomous"


# ------------------------------------------------------------------ specs: what a command asks


@dataclass(frozen=True)
class ChargeTo:
    """Charge to `target_soc_pct` by the step's end; `max_power_w` 0 = the battery's limit."""

    target_soc_pct: float
    max_power_w: float = 0.0


@dataclass(frozen=True)
class Discharge:
    """Discharge at `power_w` during the step, never below max(`floor_soc_pct`, backup reserve)."""

    power_w: float
    floor_soc_pct: float = 0.0


@dataclass(frozen=True)
class Hold:
    """Neither charge nor discharge during the step."""


Action = ChargeTo | Discharge | Hold


@dataclass(frozen=True)
class PlanStep:
    start_ms: int
    end_ms: int
    action: Action


@dataclass(frozen=True)
class ControlPlan:
    """Time-phased setpoints; a newer plan replaces the whole of an older one on the device.
    `plan_id` empty: the command id is used."""

    steps: tuple[PlanStep, ...]
    plan_id: str = ""


@dataclass(frozen=True)
class ClearPlan:
    """End the device's active control plan: it returns to its own operation mode. On the wire a
    ControlPlan with no steps (device.proto); like any plan it supersedes older pending ones."""

    plan_id: str = ""


@dataclass(frozen=True)
class SetMode:
    mode: OperationMode


@dataclass(frozen=True)
class SetBackupReserve:
    backup_reserve_pct: float


@dataclass(frozen=True)
class ChangeConfiguration:
    config: Mapping[str, str]

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.config.items())))


@dataclass(frozen=True)
class UpdateFirmware:
    version: str
    url: str = ""
    sha256: str = ""


CommandSpec = ControlPlan | ClearPlan | SetMode | SetBackupReserve | ChangeConfiguration | UpdateFirmware


class CommandKind(enum.StrEnum):
    CONTROL_PLAN = "control_plan"
    SET_MODE = "set_mode"
    SET_BACKUP_RESERVE = "set_backup_reserve"
    CHANGE_CONFIGURATION = "change_configuration"
    UPDATE_FIRMWARE = "update_firmware"


_KINDS: dict[type, CommandKind] = {
    ControlPlan: CommandKind.CONTROL_PLAN, ClearPlan: CommandKind.CONTROL_PLAN, SetMode: CommandKind.SET_MODE,
    SetBackupReserve: CommandKind.SET_BACKUP_RESERVE, ChangeConfiguration: CommandKind.CHANGE_CONFIGURATION,
    UpdateFirmware: CommandKind.UPDATE_FIRMWARE,
}


def kind_of(spec: CommandSpec) -> CommandKind:
    return _KINDS[type(spec)]


# ------------------------------------------------------------------ the stored command


@dataclass(frozen=True)
class CommandRecord:
    """One command as stored: the lifecycle functions return changed copies (`replace`)."""

    command_id: CommandId
    device_id: DeviceId
    installation_id: InstallationId
    kind: CommandKind
    state: CommandState
    created_ms: int
    expires_ms: int
    attempts: int = 0
    next_attempt_ms: int = 0          # when a sent command is sent again if still unacknowledged
    last_sent_ms: int = 0
    acked_ms: int = 0
    completed_ms: int = 0
    finished_ms: int = 0              # entered a final state
    outcome: Outcome | None = None
    detail: str = ""
    superseded_by: CommandId | None = None
    sent_session: str | None = None   # the device session the latest send went to
    sent_gateway: str | None = None


@dataclass(frozen=True)
class Command:
    """A command as callers see it: the record plus what it asks and who asked."""

    record: CommandRecord
    spec: CommandSpec
    source: str
    idempotency_key: str | None = None
    fanout_id: FanOutId | None = None


@dataclass(frozen=True)
class FanOutFailure:
    command_id: CommandId
    device_id: DeviceId
    installation_id: InstallationId
    state: CommandState
    outcome: Outcome | None
    detail: str


@dataclass(frozen=True)
class FanOutProgress:
    fanout_id: FanOutId
    group_path: str
    source: str
    total: int
    counts: Mapping[CommandState, int]
    completed: int                      # acknowledged with outcome COMPLETED
    failures: tuple[FanOutFailure, ...]
    created_ms: int
    last_acked_ms: int = 0

    @property
    def pending(self) -> int:
        return sum(self.counts.get(s, 0) for s in PENDING)

    @property
    def acknowledged(self) -> int:
        return self.counts.get(CommandState.ACKNOWLEDGED, 0)

    @property
    def unsuccessful(self) -> int:
        return sum(self.counts.get(s, 0) for s in UNSUCCESSFUL)

    @property
    def done(self) -> bool:
        return self.pending == 0
