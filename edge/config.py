"""The agent's one configuration file (TOML), validated as a whole before anything starts.

Every problem is reported at once, each with where it is in the file (`sources[2] "p1".version:
…`): unknown keys (a typo is an error, not a silent default), wrong types and ranges, two sources
with one name, more than one source with `control = true`, owners or derivations naming signals or
sources that do not exist, an MQTT topic whose unit cannot carry its signal, an identity that is
neither a claim nor a device id with its credential file. README.md ("gridtwin edge") shows the
format with an example.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.adapters.mqtt import unit_fits
from edge.model import LOAD, SIGNALS

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
EXTRA_NAME = r"^[a-z][a-z0-9_]{0,63}$"
DSMR_VERSIONS = ("2.2", "3", "4", "4+", "5", "5B", "5L", "5S", "Q3D", "ISKRA_IE", "5EONHU")


class ConfigError(Exception):
    """The file cannot be used; `problems` lists every reason, each with its place in the file."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}:\n"
                         + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSection(_Strict):
    gateway_url: str = Field("ws://127.0.0.1:8765", pattern=r"^wss?://")
    ca_file: str = ""                         # wss://: the CA the gateway's certificate chains to ("" = the system's)
    state_dir: str = "/var/lib/gridtwin-edge"  # the disk buffer and the credential (SQLite, mode 0600)
    sample_interval_s: float = Field(1.0, gt=0, le=3_600)
    max_buffered_days: float = Field(14.0, gt=0, le=30)   # the gateway refuses samples older than 30 days
    durability: Literal["full", "normal"] = "full"        # full: every sample survives a power cut
    correct_clock_skew: bool = True           # stamp samples with the gateway's time when the clock is off
    max_clock_skew_s: float = Field(2.0, ge=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(60.0, gt=0)
    max_batch_bytes: int = Field(512 * 1024, ge=1_024, le=1_000_000)   # the gateway's frame limit is 1 MiB
    log_every_s: float = Field(60.0, gt=0)    # how often counters are logged
    metrics_port: int = Field(0, ge=0, le=65_535)   # Prometheus /metrics (0: off)


class IdentitySection(_Strict):
    """Either a claim (claim_code + assets_url: the agent fetches its credential once) or a device
    provisioned by hand (device_id + credential_file)."""

    claim_code: str = ""
    assets_url: str = ""                      # host:port of the AssetService
    assets_tls: bool = False
    assets_ca_file: str = ""
    device_id: str = ""
    credential_file: str = ""

    @model_validator(mode="after")
    def _one_way(self) -> IdentitySection:
        if self.claim_code and not self.assets_url:
            raise ValueError("claim_code needs assets_url (host:port of the AssetService)")
        if bool(self.device_id) != bool(self.credential_file):
            raise ValueError("device_id and credential_file go together")
        return self


class CombineSection(_Strict):
    owners: dict[str, str] = Field(default_factory=dict)     # signal → the source it must come from
    derive_load_from: tuple[str, ...] = ()                    # load = their sum when not measured


class _Source(_Strict):
    name: str = Field(pattern=NAME)
    poll_interval_s: float = Field(1.0, gt=0, le=3_600)
    stale_after_s: float = Field(10.0, gt=0)                  # older readings are not reported
    timeout_s: float = Field(5.0, gt=0, le=120)


class PowerwallSource(_Source):
    kind: Literal["powerwall"]
    host: str = Field(min_length=1)
    port: int = Field(443, ge=1, le=65_535)
    password: str = ""
    password_file: str = ""
    email: str = ""
    verify_tls: bool = False                  # the gateway's certificate is self-signed
    ca_file: str = ""
    control: bool = False

    @model_validator(mode="after")
    def _password(self) -> PowerwallSource:
        if bool(self.password) == bool(self.password_file):
            raise ValueError("give the gateway password as password or password_file (one of them)")
        return self

    def secret(self) -> str:
        return self.password or Path(self.password_file).read_text().strip()


class FroniusSource(_Source):
    kind: Literal["fronius"]
    url: str = Field(pattern=r"^https?://")
    detail_interval_s: float = Field(5.0, gt=0)


class SunSpecSource(_Source):
    kind: Literal["sunspec"]
    host: str = Field(min_length=1)
    port: int = Field(502, ge=1, le=65_535)
    unit_id: int = Field(1, ge=0, le=255)
    base_address: int | None = Field(None, ge=0, le=65_535)   # None: try 40000, 0, 50000
    meter_sign: Literal["import_positive", "export_positive"] = "import_positive"
    battery_sign: Literal["discharge_positive", "charge_positive"] = "discharge_positive"
    control: bool = False
    revert_s: int = Field(120, ge=0, le=65_534)               # the inverter drops a setpoint not refreshed in time


class DsmrSource(_Source):
    kind: Literal["dsmr"]
    version: Literal[DSMR_VERSIONS] = "5"  # type: ignore[valid-type]
    serial_port: str = ""
    tcp: str = Field("", pattern=r"^$|^[^:]+:\d{1,5}$")

    @model_validator(mode="after")
    def _one_port(self) -> DsmrSource:
        if bool(self.serial_port) == bool(self.tcp):
            raise ValueError("give serial_port (e.g. /dev/ttyUSB0) or tcp (host:port of a serial bridge), one of them")
        return self


class Topic(_Strict):
    signal: str
    unit: str = "W"
    json_key: str = ""
    sign: Literal["normal", "invert"] = "normal"

    @model_validator(mode="after")
    def _fits(self) -> Topic:
        import re

        if self.signal not in SIGNALS and not re.fullmatch(EXTRA_NAME, self.signal):
            raise ValueError(f"signal {self.signal!r} is neither one of {', '.join(SIGNALS)} nor an extra's name "
                             "(lower case, ending in its unit: grid_frequency_hz)")
        if not unit_fits(self.signal, self.unit):
            raise ValueError(f"unit {self.unit!r} cannot carry {self.signal}")
        return self


class MqttSource(_Source):
    kind: Literal["mqtt"]
    host: str = Field(min_length=1)
    port: int = Field(1883, ge=1, le=65_535)
    username: str = ""
    password: str = ""
    client_id: str = ""
    topics: dict[str, Topic] = Field(min_length=1)


Source = Annotated[PowerwallSource | FroniusSource | SunSpecSource | DsmrSource | MqttSource,
                   Field(discriminator="kind")]


class EdgeConfig(_Strict):
    agent: AgentSection = Field(default_factory=lambda: AgentSection.model_validate({}))
    identity: IdentitySection = Field(default_factory=IdentitySection)
    combine: CombineSection = Field(default_factory=CombineSection)
    sources: list[Source] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> EdgeConfig:
        problems = []
        names = [s.name for s in self.sources]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"two sources are named {name!r}")
        controlling = [s.name for s in self.sources if getattr(s, "control", False)]
        if len(controlling) > 1:
            problems.append(f"only one source may have control = true, not {', '.join(controlling)}")
        for signal, source in self.combine.owners.items():
            if signal not in SIGNALS:
                problems.append(f"combine.owners: {signal!r} is not one of {', '.join(SIGNALS)}")
            if source not in names:
                problems.append(f"combine.owners.{signal}: no source is named {source!r}")
        for signal in self.combine.derive_load_from:
            if signal not in SIGNALS or signal == LOAD:
                problems.append(f"combine.derive_load_from: {signal!r} is not a signal the load can be summed from")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def control_source(self) -> str | None:
        return next((s.name for s in self.sources if getattr(s, "control", False)), None)


def load(path: str | Path) -> EdgeConfig:
    """The validated configuration, or ConfigError listing every problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), ["no such file"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    return parse(raw, str(path))


def parse(raw: dict[str, Any], where: str = "config") -> EdgeConfig:
    try:
        return EdgeConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(where, [_describe(error, raw) for error in exc.errors()]) from None


def _describe(error: Any, raw: dict[str, Any]) -> str:
    loc = list(error["loc"])
    parts: list[str] = []
    i = 0
    while i < len(loc):
        item = loc[i]
        if isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
            if parts[-1].startswith("sources["):
                source = (raw.get("sources") or [{}])[item] if item < len(raw.get("sources") or []) else {}
                if isinstance(source, dict) and source.get("name"):
                    parts[-1] += f" {source['name']!r}"
                if i + 1 < len(loc) and loc[i + 1] in _KINDS:
                    i += 1          # pydantic names the union member; the kind is in the file already
        else:
            parts.append(str(item))
        i += 1
    where = ".".join(parts)
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


_KINDS = ("powerwall", "fronius", "sunspec", "dsmr", "mqtt")
