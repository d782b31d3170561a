"""Who may call what on which installations: pure decisions, returned as values.

Principals are API tokens (scopes + allowed group paths) and devices (their own record only).

- Scopes nest: `admin` includes `command`, which includes `read`. Every RPC of every service has
  a `Rule` in `ACCESS`: the scope it needs, whether a device may call it (for itself and its own
  installation only), and how its target is scoped to the token's groups.
- An API principal sees the installations that are members, at any depth, of a group within
  one of its allowed paths; the root path "" sees everything, ungrouped installations too.
- A group path, a program or a new token's paths are acceptable when they lie within one of the
  principal's allowed paths. A token can only grant scopes and paths its issuer holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.assets.model import DeviceId, GroupPath, InstallationId, PrincipalId
from services.assets.paths import ROOT, is_within_any


class Scope(StrEnum):
    READ = "read"
    COMMAND = "command"
    ADMIN = "admin"


_IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.COMMAND: frozenset({Scope.READ, Scope.COMMAND}),
    Scope.ADMIN: frozenset({Scope.READ, Scope.COMMAND, Scope.ADMIN}),
}


class Target(StrEnum):
    """How a method's target is scoped to the token's groups (the handler checks it, since it
    needs the request)."""

    INSTALLATION = "installation"  # an installation, or what belongs to one (device, command, customer):
    #                                a member of a group within the token's paths
    GROUP = "group"                # a group path (a group, program, grid event or fan-out by its group;
    #                                the paths a new token is granted) within the token's paths
    FILTERED = "filtered"          # a list or search: the answer holds only what lies within the paths
    GLOBAL = "global"              # nothing group-scoped (weather alerts, new customers): the scope suffices


@dataclass(frozen=True)
class Rule:
    """Who may call one RPC: API tokens holding `scope`, devices (for their own installation)
    when `devices`; `target` says how what the request names is scoped to the token's groups.
    `anonymous`: anyone, without credentials, because the request carries a one-time secret of
    its own that the handler checks (a device's claim code); `scope` then says nothing."""

    scope: Scope
    target: Target
    devices: bool = False
    anonymous: bool = False


def _rules(service: str, **rules: Rule) -> dict[str, Rule]:
    return {f"/{service}/{method}": rule for method, rule in rules.items()}


_R, _C, _A = Scope.READ, Scope.COMMAND, Scope.ADMIN
_I, _G, _F, _GL = Target.INSTALLATION, Target.GROUP, Target.FILTERED, Target.GLOBAL

# Every RPC of every gridtwin service, by full method name. A method without a rule is refused
# (services.assets.guard), and tests/integration/test_access_matrix.py fails for it.
ACCESS: dict[str, Rule] = {
    **_rules("gridtwin.assets.v1.AssetService",
             CreateCustomer=Rule(_A, _GL), GetCustomer=Rule(_R, _I),
             CreateInstallation=Rule(_A, _G), GetInstallation=Rule(_R, _I, devices=True),
             UpdateInstallationSettings=Rule(_C, _I),
             SearchInstallationsInBox=Rule(_R, _F), SearchInstallationsInPolygon=Rule(_R, _F),
             SearchInstallationsNear=Rule(_R, _F),
             RegisterDevice=Rule(_A, _I), GetDevice=Rule(_R, _I, devices=True), ListDevices=Rule(_R, _I),
             RevokeDevice=Rule(_A, _I),
             RotateDeviceCredential=Rule(_A, _I, devices=True),   # a device: its own credential only
             CreateDeviceClaim=Rule(_A, _I),
             ClaimDevice=Rule(_R, _GL, anonymous=True),   # the claim code is the credential
             CreateGroup=Rule(_A, _G), ListGroups=Rule(_R, _G), AddToGroup=Rule(_A, _G),
             RemoveFromGroup=Rule(_A, _G), ListGroupInstallations=Rule(_R, _G),
             ListInstallationGroups=Rule(_R, _I),
             CreateProgram=Rule(_A, _G), ChangeEnrollment=Rule(_C, _G), GetEnrollment=Rule(_R, _G),
             ListEnrollmentHistory=Rule(_R, _G),
             CreateToken=Rule(_A, _G), RevokeToken=Rule(_A, _G)),
    **_rules("gridtwin.telemetry.v1.TelemetryService",
             GetLatestSample=Rule(_R, _I), QueryRange=Rule(_R, _I), StreamLiveSamples=Rule(_R, _I)),
    **_rules("gridtwin.twins.v1.TwinService",
             # a device may follow its own twin: the desired state it is asked to reach
             GetTwin=Rule(_R, _I, devices=True), StreamTwin=Rule(_R, _I, devices=True),
             ListAlerts=Rule(_R, _F), ExportAlertLog=Rule(_R, _I), OptOutOfStorm=Rule(_C, _I),
             ListNotifications=Rule(_R, _I)),
    **_rules("gridtwin.analytics.v1.AnalyticsService",
             GetEnergyReport=Rule(_R, _I), GetCapacityTrend=Rule(_R, _I), GetSeries=Rule(_R, _I)),
    **_rules("gridtwin.weather.v1.WeatherService",  # public alerts: any read token
             ListActiveAlerts=Rule(_R, _GL), StreamAlertChanges=Rule(_R, _GL), ListAlertChanges=Rule(_R, _GL),
             GetAlert=Rule(_R, _GL),
             ListAffectedInstallations=Rule(_R, _F)),  # names installations: the token's groups only
    **_rules("gridtwin.control.v1.ControlService",
             SubmitCommand=Rule(_C, _I), SubmitGroupCommand=Rule(_C, _G), GetCommand=Rule(_R, _I),
             ListCommands=Rule(_R, _I), GetFanOutProgress=Rule(_R, _G), StreamFanOutProgress=Rule(_R, _G),
             CancelCommand=Rule(_C, _I), CancelFanOut=Rule(_C, _G)),
    **_rules("gridtwin.control.v1.VppService",
             CreateEvent=Rule(_C, _G), UpdateEvent=Rule(_C, _G), CancelEvent=Rule(_C, _G), GetEvent=Rule(_R, _G),
             ListEvents=Rule(_R, _F), ListParticipants=Rule(_R, _G), OptOut=Rule(_C, _I),
             GetEventProgress=Rule(_R, _G), StreamContribution=Rule(_R, _G), GetEventReport=Rule(_R, _G)),
}

_ASSETS = "/gridtwin.assets.v1.AssetService/"
REQUIRED_SCOPE: dict[str, Scope] = {
    name.removeprefix(_ASSETS): rule.scope for name, rule in ACCESS.items() if name.startswith(_ASSETS)}
DEVICE_METHODS = frozenset(
    name.removeprefix(_ASSETS) for name, rule in ACCESS.items() if name.startswith(_ASSETS) and rule.devices)


def effective_scopes(scopes: Iterable[Scope]) -> frozenset[Scope]:
    return frozenset().union(*(_IMPLIED[s] for s in scopes))


@dataclass(frozen=True)
class ApiPrincipal:
    principal_id: PrincipalId
    name: str
    scopes: frozenset[Scope]
    allowed_paths: tuple[GroupPath, ...]
    expires_unix_ms: int | None = None

    @property
    def actor(self) -> str:
        return f"token:{self.principal_id}"


@dataclass(frozen=True)
class DevicePrincipal:
    device_id: DeviceId
    installation_id: InstallationId

    @property
    def actor(self) -> str:
        return f"device:{self.device_id}"


Principal = ApiPrincipal | DevicePrincipal


@dataclass(frozen=True)
class Denied:
    reason: str


@dataclass(frozen=True)
class Visibility:
    """The installations a principal sees: all of them, the members of `paths` at any depth,
    or (a device) exactly `installation_id`."""

    everything: bool = False
    paths: tuple[GroupPath, ...] = ()
    installation_id: InstallationId | None = None


def is_expired(principal: Principal, now_unix_ms: int) -> bool:
    return (isinstance(principal, ApiPrincipal) and principal.expires_unix_ms is not None
            and principal.expires_unix_ms <= now_unix_ms)


def authorize(principal: Principal, method: str) -> Denied | None:
    """May `principal` call `method` at all (before looking at what it names)?"""
    if isinstance(principal, DevicePrincipal):
        if method in DEVICE_METHODS:
            return None
        return Denied(f"devices may only call {', '.join(sorted(DEVICE_METHODS))}")
    required = REQUIRED_SCOPE.get(method)
    if required is None:
        return Denied(f"{method} is not an assets operation")
    if required not in effective_scopes(principal.scopes):
        return Denied(f"{method} needs the {required.value} scope")
    return None


def admit(principal: Principal, method: str, rule: Rule) -> Denied | None:
    """May `principal` call the RPC `method` (full name) under `rule`, before its target is known?"""
    if isinstance(principal, DevicePrincipal):
        return None if rule.devices else Denied(f"devices may not call {method.rsplit('/', 1)[-1]}")
    if rule.scope not in effective_scopes(principal.scopes):
        return Denied(f"{method.rsplit('/', 1)[-1]} needs the {rule.scope.value} scope")
    return None


def visibility(principal: Principal) -> Visibility:
    if isinstance(principal, DevicePrincipal):
        return Visibility(installation_id=principal.installation_id)
    if ROOT in principal.allowed_paths:
        return Visibility(everything=True)
    return Visibility(paths=principal.allowed_paths)


def check_path(principal: Principal, path: GroupPath) -> Denied | None:
    """May `principal` see or change the group at `path` (and everything under it)?"""
    if isinstance(principal, DevicePrincipal):
        return Denied("devices see no groups")
    if is_within_any(path, principal.allowed_paths):
        return None
    return Denied(f"group {path!r} is outside this token's groups")


def check_grant(issuer: Principal, scopes: Iterable[Scope], paths: Iterable[GroupPath]) -> Denied | None:
    """May `issuer` create a token with `scopes` over `paths`? Never more than it holds."""
    if isinstance(issuer, DevicePrincipal):
        return Denied("devices cannot issue tokens")
    missing = set(scopes) - effective_scopes(issuer.scopes)
    if missing:
        return Denied(f"cannot grant scopes this token lacks: {', '.join(sorted(missing))}")
    return check_paths(issuer, paths)


def check_paths(principal: Principal, paths: Iterable[GroupPath]) -> Denied | None:
    for path in paths:
        denied = check_path(principal, path)
        if denied is not None:
            return denied
    return None
