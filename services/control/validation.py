"""Checks on everything a caller submits, before it reaches SQL or a device. Each function returns
the validated value or raises `InvalidArgument` naming the field and what is wrong with it.

Control plans: at least one and at most `MAX_PLAN_STEPS` steps, each with start < end, in time
order without overlap, the last ending in the future and none starting more than
`PLAN_START_GRACE_MS` in the past (a plan built a moment ago may start "now"); charge targets and
floors in [0, 100] %, powers finite and ≥ 0 (a discharge > 0).
"""

from __future__ import annotations

import math
import re

from services.control.model import (
    ChangeConfiguration,
    ChargeTo,
    ClearPlan,
    CommandId,
    CommandSpec,
    ControlPlan,
    Discharge,
    FanOutId,
    Hold,
    InvalidArgument,
    SetBackupReserve,
    SetMode,
    UpdateFirmware,
)

ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")   # as the devices and installations tables constrain ids
GENERATED_ID = re.compile(r"[0-9a-f]{32}")     # command and fan-out ids (uuid4 hex)
SOURCE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_TTL_S = 30 * 86_400.0
MAX_PLAN_STEPS = 1_000
MAX_PLAN_SPAN_MS = 31 * 86_400_000
PLAN_START_GRACE_MS = 300_000
MAX_POWER_W = 1_000_000.0
MAX_KEY_CHARS = 200
MAX_CONFIG_ENTRIES = 100


def parse_id(text: str, field: str) -> str:
    if not ID.fullmatch(text):
        raise InvalidArgument(field, f"{text[:80]!r} is not an id: 1-128 characters of A-Z, a-z, 0-9, _ . : -")
    return text


def parse_command_id(text: str, field: str = "command_id") -> CommandId:
    if not GENERATED_ID.fullmatch(text):
        raise InvalidArgument(field, f"{text[:80]!r} is not a command id (32 lowercase hex digits)")
    return CommandId(text)


def parse_fanout_id(text: str, field: str = "fanout_id") -> FanOutId:
    if not GENERATED_ID.fullmatch(text):
        raise InvalidArgument(field, f"{text[:80]!r} is not a fan-out id (32 lowercase hex digits)")
    return FanOutId(text)


def parse_ttl_s(ttl_s: float, field: str = "ttl_s") -> float:
    if not (math.isfinite(ttl_s) and 0 < ttl_s <= MAX_TTL_S):
        raise InvalidArgument(field, f"{ttl_s!r} must be > 0 and at most {MAX_TTL_S:.0f} s")
    return ttl_s


def parse_key(text: str, field: str = "idempotency_key") -> str | None:
    if not text:
        return None
    if len(text) > MAX_KEY_CHARS or not text.isprintable():
        raise InvalidArgument(field, f"must be printable and at most {MAX_KEY_CHARS} characters")
    return text


def parse_source(text: str, field: str = "source") -> str:
    if not text:
        return "api"
    if not SOURCE.fullmatch(text):
        raise InvalidArgument(field, f"{text[:80]!r}: lowercase letters, digits, _ . : - (≤ 64), e.g. 'vpp'")
    return text


def _pct(value: float, field: str) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 100.0):
        raise InvalidArgument(field, f"{value!r} must be a percentage in [0, 100]")
    return value


def _power(value: float, field: str, *, positive: bool) -> float:
    if not math.isfinite(value) or value < 0 or value > MAX_POWER_W or (positive and value == 0):
        need = "> 0" if positive else ">= 0"
        raise InvalidArgument(field, f"{value!r} W must be {need} and at most {MAX_POWER_W:.0f} W")
    return value


def validate_plan(plan: ControlPlan, now_ms: int, field: str = "control_plan") -> ControlPlan:
    if plan.plan_id and not ID.fullmatch(plan.plan_id):
        raise InvalidArgument(f"{field}.plan_id", "1-128 characters of A-Z, a-z, 0-9, _ . : -")
    if not plan.steps:
        raise InvalidArgument(f"{field}.steps", "a plan needs at least one step")
    if len(plan.steps) > MAX_PLAN_STEPS:
        raise InvalidArgument(f"{field}.steps", f"at most {MAX_PLAN_STEPS} steps")
    previous_end = None
    for i, step in enumerate(plan.steps):
        where = f"{field}.steps[{i}]"
        if step.start_ms >= step.end_ms:
            raise InvalidArgument(where, "start must be before end")
        if previous_end is not None and step.start_ms < previous_end:
            raise InvalidArgument(where, "steps must be in time order and must not overlap")
        if step.start_ms < now_ms - PLAN_START_GRACE_MS:
            raise InvalidArgument(where, "starts in the past")
        previous_end = step.end_ms
        match step.action:
            case ChargeTo(target, max_power):
                _pct(target, f"{where}.charge_to.target_state_of_charge_pct")
                _power(max_power, f"{where}.charge_to.max_power_w", positive=False)
            case Discharge(power, floor):
                _power(power, f"{where}.discharge.power_w", positive=True)
                _pct(floor, f"{where}.discharge.floor_state_of_charge_pct")
            case Hold():
                pass
            case _:
                raise InvalidArgument(where, "needs an action: charge_to, discharge or hold")
    assert previous_end is not None
    if previous_end <= now_ms:
        raise InvalidArgument(f"{field}.steps", "the plan ends in the past")
    if previous_end - plan.steps[0].start_ms > MAX_PLAN_SPAN_MS:
        raise InvalidArgument(f"{field}.steps", "a plan spans at most 31 days")
    return plan


def validate_spec(spec: CommandSpec | None, now_ms: int, field: str = "spec") -> CommandSpec:
    match spec:
        case ControlPlan():
            return validate_plan(spec, now_ms, f"{field}.control_plan")
        case ClearPlan(plan_id):
            if plan_id and not ID.fullmatch(plan_id):
                raise InvalidArgument(f"{field}.control_plan.plan_id", "1-128 characters of A-Z, a-z, 0-9, _ . : -")
            return spec
        case SetMode():
            return spec
        case SetBackupReserve(pct):
            _pct(pct, f"{field}.set_backup_reserve.backup_reserve_pct")
            return spec
        case ChangeConfiguration(config):
            if not config or len(config) > MAX_CONFIG_ENTRIES:
                raise InvalidArgument(f"{field}.change_configuration.config",
                                      f"1 to {MAX_CONFIG_ENTRIES} entries")
            for key, value in config.items():
                if not ID.fullmatch(key) or len(value) > 1_000 or not value.isprintable():
                    raise InvalidArgument(f"{field}.change_configuration.config",
                                          f"{key[:60]!r}: keys are ids, values ≤ 1000 printable characters")
            return spec
        case UpdateFirmware(version, url, sha256):
            if not version or len(version) > 64 or not version.isprintable():
                raise InvalidArgument(f"{field}.update_firmware.version", "1-64 printable characters")
            if url and (len(url) > 2_000 or not url.startswith(("https://", "http://"))):
                raise InvalidArgument(f"{field}.update_firmware.url", "an http(s) URL of at most 2000 characters")
            if sha256 and not SHA256.fullmatch(sha256):
                raise InvalidArgument(f"{field}.update_firmware.sha256", "64 lowercase hex digits")
            return spec
        case _:
            raise InvalidArgument(field, "needs one of control_plan, set_mode, set_backup_reserve, "
                                         "change_configuration, update_firmware")
