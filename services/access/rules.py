"""Who may call what on which installations: the one rule table (`ACCESS`) and pure decisions,
returned as values.

- Every RPC of every service has a `Rule` in `ACCESS`: the scope it needs, which kinds of principal
  may call it besides operators, tokens and machine clients (devices for themselves, homeowners
  for their installations, installers at their sites), and how its target is scoped.
- Operators, tokens and machine clients see the installations that are members, at any depth, of
  a group within one of their allowed paths; the root path "" sees everything, ungrouped
  installations too. Homeowners, installers and devices see exactly their installations.
- A group path, a program or a new token's paths are acceptable when they lie within one of the
  principal's allowed paths (homeowners, installers and devices see no groups). A token can only
  grant scopes and paths its issuer holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.access.model import (
    BOUND,
    ApiPrincipal,
    Denied,
    DevicePrincipal,
    Kind,
    Principal,
    Scope,
    Visibility,
    effective_scopes,
)
from services.assets.model import GroupPath
from services.assets.paths import ROOT, is_within_any


class Target(StrEnum):
    """How a method's target is scoped to the caller (the handler checks it, since it needs the
    request)."""

    INSTALLATION = "installation"  # an installation, or what belongs to one (device, command, customer):
    #                                visible to the caller
    GROUP = "group"                # a group path (a group, program, grid event or fan-out by its group;
    #                                the paths a new token is granted) within the caller's paths
    FILTERED = "filtered"          # a list or search: the answer holds only what the caller sees
    GLOBAL = "global"              # nothing group-scoped (weather alerts, new customers): the scope suffices
    SELF = "self"                  # the caller's own: itself, its session, the tokens it holds or made
    #                                (an admin also reaches others' within its own reach)


@dataclass(frozen=True)
class Rule:
    """Who may call one RPC. Operators, tokens and machine clients holding `scope` always may;
    besides them: devices (for their own installation) when `devices`, homeowners (their
    installations) when `homeowners`, installers (their sites) when `installers` — each still
    needs `scope` among its own (a read-only token of a homeowner reads only). `anonymous`: anyone,
    without credentials, because the request carries a one-time secret of its own that the handler
    checks (a claim code, a password, a client secret); `scope` then says nothing."""

    scope: Scope
    target: Target
    devices: bool = False
    anonymous: bool = False
    homeowners: bool = False
    installers: bool = False

    @property
    def kinds(self) -> frozenset[Kind]:
        """Every kind of principal that may call (with the scope)."""
        extra = {Kind.DEVICE: self.devices, Kind.HOMEOWNER: self.homeowners, Kind.INSTALLER: self.installers}
        return frozenset({Kind.OPERATOR, Kind.TOKEN, Kind.MACHINE} | {k for k, on in extra.items() if on})


def _rules(service: str, **rules: Rule) -> dict[str, Rule]:
    return {f"/{service}/{method}": rule for method, rule in rules.items()}


_R, _C, _A = Scope.READ, Scope.COMMAND, Scope.ADMIN
_I, _G, _F, _GL, _S = Target.INSTALLATION, Target.GROUP, Target.FILTERED, Target.GLOBAL, Target.SELF
_HOME = {"homeowners": True}
_SITE = {"installers": True}
_BOTH = {"homeowners": True, "installers": True}

# Every RPC of every gridtwin service, by full method name. A method without a rule is refused
# (services.access.guard), and tests/integration/test_access_matrix.py fails for it.
ACCESS: dict[str, Rule] = {
    **_rules("gridtwin.assets.v1.AssetService",
             CreateCustomer=Rule(_A, _GL), GetCustomer=Rule(_R, _I, **_HOME),
             CreateInstallation=Rule(_A, _G), GetInstallation=Rule(_R, _I, devices=True, **_BOTH),
             UpdateInstallationSettings=Rule(_C, _I, **_HOME),
             SearchInstallationsInBox=Rule(_R, _F), SearchInstallationsInPolygon=Rule(_R, _F),
             SearchInstallationsNear=Rule(_R, _F),
             RegisterDevice=Rule(_A, _I, **_SITE), GetDevice=Rule(_R, _I, devices=True, **_BOTH),
             ListDevices=Rule(_R, _I, **_BOTH),
             RevokeDevice=Rule(_A, _I),
             RotateDeviceCredential=Rule(_A, _I, devices=True),   # a device: its own credential only
             CreateDeviceClaim=Rule(_A, _I, **_SITE),
             ClaimDevice=Rule(_R, _GL, anonymous=True),   # the claim code is the credential
             CreateGroup=Rule(_A, _G), ListGroups=Rule(_R, _G), AddToGroup=Rule(_A, _G),
             RemoveFromGroup=Rule(_A, _G), ListGroupInstallations=Rule(_R, _G),
             ListInstallationGroups=Rule(_R, _I),
             CreateProgram=Rule(_A, _G), ChangeEnrollment=Rule(_C, _G), GetEnrollment=Rule(_R, _G),
             ListEnrollmentHistory=Rule(_R, _G),
             CreateToken=Rule(_A, _G), RevokeToken=Rule(_A, _G)),
    **_rules("gridtwin.access.v1.AccessService",
             # the request's password, ID token, code or client secret is the credential
             Login=Rule(_R, _GL, anonymous=True), LoginWithIdentity=Rule(_R, _GL, anonymous=True),
             AcceptInvitation=Rule(_R, _GL, anonymous=True),
             ResetPassword=Rule(_R, _GL, anonymous=True), IssueClientToken=Rule(_R, _GL, anonymous=True),
             # oneself: every authenticated caller
             Logout=Rule(_R, _S, **_BOTH), WhoAmI=Rule(_R, _S, devices=True, **_BOTH),
             CreateUser=Rule(_A, _G), ListUsers=Rule(_A, _F), DisableUser=Rule(_A, _G),
             InviteHomeowner=Rule(_C, _I),
             CreatePasswordReset=Rule(_A, _G),
             # tokens of one's own, never more than one holds (the handler: a person's standalone
             # tokens and others' tokens need admin)
             CreateToken=Rule(_R, _S, **_BOTH), ListTokens=Rule(_R, _S, **_BOTH),
             RevokeToken=Rule(_R, _S, **_BOTH),
             # the log lists entries about what lies within the admin's reach
             CreateClient=Rule(_A, _G), ListAuditLog=Rule(_A, _F)),
    **_rules("gridtwin.telemetry.v1.TelemetryService",
             GetLatestSample=Rule(_R, _I, **_BOTH), QueryRange=Rule(_R, _I, **_HOME),
             StreamLiveSamples=Rule(_R, _I, **_HOME)),
    **_rules("gridtwin.twins.v1.TwinService",
             # a device may follow its own twin: the desired state it is asked to reach
             GetTwin=Rule(_R, _I, devices=True, **_HOME), StreamTwin=Rule(_R, _I, devices=True, **_HOME),
             ListAlerts=Rule(_R, _F, **_HOME), ExportAlertLog=Rule(_R, _I, **_HOME),
             OptOutOfStorm=Rule(_C, _I, **_HOME), ListNotifications=Rule(_R, _I, **_HOME)),
    **_rules("gridtwin.analytics.v1.AnalyticsService",
             GetEnergyReport=Rule(_R, _I, **_HOME), GetCapacityTrend=Rule(_R, _I, **_HOME),
             GetSeries=Rule(_R, _I, **_HOME)),
    **_rules("gridtwin.weather.v1.WeatherService",  # public alerts: any read token, homeowners too
             ListActiveAlerts=Rule(_R, _GL, **_HOME), StreamAlertChanges=Rule(_R, _GL, **_HOME),
             ListAlertChanges=Rule(_R, _GL, **_HOME), GetAlert=Rule(_R, _GL, **_HOME),
             ListAffectedInstallations=Rule(_R, _F, **_HOME)),  # names installations: the caller's only
    **_rules("gridtwin.control.v1.ControlService",
             SubmitCommand=Rule(_C, _I, **_HOME), SubmitGroupCommand=Rule(_C, _G),
             GetCommand=Rule(_R, _I, **_HOME), ListCommands=Rule(_R, _I, **_HOME),
             GetFanOutProgress=Rule(_R, _G), StreamFanOutProgress=Rule(_R, _G),
             CancelCommand=Rule(_C, _I, **_HOME), CancelFanOut=Rule(_C, _G)),
    **_rules("gridtwin.control.v1.VppService",
             CreateEvent=Rule(_C, _G), UpdateEvent=Rule(_C, _G), CancelEvent=Rule(_C, _G), GetEvent=Rule(_R, _G),
             ListEvents=Rule(_R, _F), ListParticipants=Rule(_R, _G), OptOut=Rule(_C, _I, **_HOME),
             GetEventProgress=Rule(_R, _G), StreamContribution=Rule(_R, _G), GetEventReport=Rule(_R, _G)),
}

# What the audit log records: every method needing command or admin (the admin reads too: who read
# the log or the users is worth knowing), and access's own writes (logins, tokens, codes).
AUDITED = frozenset(name for name, rule in ACCESS.items()
                    if rule.scope is not Scope.READ or name.startswith("/gridtwin.access.v1.AccessService/")
                    and name.rsplit("/", 1)[-1] not in {"WhoAmI", "ListUsers", "ListTokens", "ListAuditLog"})

_ASSETS = "/gridtwin.assets.v1.AssetService/"
REQUIRED_SCOPE: dict[str, Scope] = {
    name.removeprefix(_ASSETS): rule.scope for name, rule in ACCESS.items() if name.startswith(_ASSETS)}
DEVICE_METHODS = frozenset(
    name.removeprefix(_ASSETS) for name, rule in ACCESS.items() if name.startswith(_ASSETS) and rule.devices)


def is_expired(principal: Principal, now_unix_ms: int) -> bool:
    return (isinstance(principal, ApiPrincipal) and principal.expires_unix_ms is not None
            and principal.expires_unix_ms <= now_unix_ms)


def authorize(principal: Principal, method: str) -> Denied | None:
    """May `principal` call the AssetService `method` (short name) at all?"""
    rule = ACCESS.get(_ASSETS + method)
    if rule is None:
        return Denied(f"{method} is not an assets operation")
    return admit(principal, _ASSETS + method, rule)


def admit(principal: Principal, method: str, rule: Rule) -> Denied | None:
    """May `principal` call the RPC `method` (full name) under `rule`, before its target is known?"""
    short = method.rsplit("/", 1)[-1]
    if principal.kind not in rule.kinds:
        return Denied(f"{_plural(principal.kind)} may not call {short}")
    if isinstance(principal, DevicePrincipal):
        return None
    if rule.scope not in effective_scopes(principal.scopes):
        return Denied(f"{short} needs the {rule.scope.value} scope")
    return None


def _plural(kind: Kind) -> str:
    return {Kind.TOKEN: "tokens", Kind.MACHINE: "machine clients"}.get(kind, f"{kind.value}s")


def visibility(principal: Principal) -> Visibility:
    if isinstance(principal, DevicePrincipal):
        return Visibility(installation_ids=(principal.installation_id,))
    if principal.kind in BOUND:
        return Visibility(installation_ids=principal.installation_ids)
    if ROOT in principal.allowed_paths:
        return Visibility(everything=True)
    return Visibility(paths=principal.allowed_paths)


def check_path(principal: Principal, path: GroupPath) -> Denied | None:
    """May `principal` see or change the group at `path` (and everything under it)?"""
    if isinstance(principal, DevicePrincipal) or principal.kind in BOUND:
        return Denied(f"{_plural(principal.kind)} see no groups")
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


def sees_installation(vis: Visibility, installation_id: str) -> bool | None:
    """Whether `vis` sees the installation, when that is decidable without the database (None:
    it depends on group memberships)."""
    if vis.everything:
        return True
    if vis.installation_ids is not None:
        return installation_id in vis.installation_ids
    return None
