"""Who may call what on which installations: pure decisions, returned as values.

Principals are API tokens (scopes + allowed group paths) and devices (their own record only).

- Scopes nest: `admin` includes `command`, which includes `read`. Every RPC needs one scope
  (`REQUIRED_SCOPE`); a device may only read itself and its installation (`DEVICE_METHODS`).
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

REQUIRED_SCOPE: dict[str, Scope] = {
    "CreateCustomer": Scope.ADMIN,
    "GetCustomer": Scope.READ,
    "CreateInstallation": Scope.ADMIN,
    "GetInstallation": Scope.READ,
    "UpdateInstallationSettings": Scope.COMMAND,
    "SearchInstallationsInBox": Scope.READ,
    "SearchInstallationsInPolygon": Scope.READ,
    "SearchInstallationsNear": Scope.READ,
    "RegisterDevice": Scope.ADMIN,
    "GetDevice": Scope.READ,
    "ListDevices": Scope.READ,
    "RevokeDevice": Scope.ADMIN,
    "CreateGroup": Scope.ADMIN,
    "ListGroups": Scope.READ,
    "AddToGroup": Scope.ADMIN,
    "RemoveFromGroup": Scope.ADMIN,
    "ListGroupInstallations": Scope.READ,
    "ListInstallationGroups": Scope.READ,
    "CreateProgram": Scope.ADMIN,
    "ChangeEnrollment": Scope.COMMAND,
    "GetEnrollment": Scope.READ,
    "ListEnrollmentHistory": Scope.READ,
    "CreateToken": Scope.ADMIN,
    "RevokeToken": Scope.ADMIN,
}
DEVICE_METHODS = frozenset({"GetDevice", "GetInstallation"})


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
