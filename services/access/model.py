"""Principals: who is calling, as values. Pure: no I/O, no gRPC.

    Principal = ApiPrincipal | DevicePrincipal
     ApiPrincipal.kind: OPERATOR (a person with a role over group paths), HOMEOWNER (a person bound
                        to installations), INSTALLER (a person who registers devices at the
                        installations given to them), MACHINE (an OAuth 2.0 client), TOKEN (a
                        standalone personal access token or a service token)
     DevicePrincipal:   a device, its own record and installation only

A person's session or personal access token authenticates as the person: the same kind, paths
and installations, with the token's scopes when it has fewer. Roles map to scopes: viewer → read,
operator → command, admin → admin (which include each other: admin ⊃ command ⊃ read).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.assets.model import DeviceId, GroupPath, InstallationId, PrincipalId


class Scope(StrEnum):
    READ = "read"
    COMMAND = "command"
    ADMIN = "admin"


_IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.COMMAND: frozenset({Scope.READ, Scope.COMMAND}),
    Scope.ADMIN: frozenset({Scope.READ, Scope.COMMAND, Scope.ADMIN}),
}


def effective_scopes(scopes: Iterable[Scope]) -> frozenset[Scope]:
    return frozenset().union(*(_IMPLIED[s] for s in scopes))


class Kind(StrEnum):
    OPERATOR = "operator"
    HOMEOWNER = "homeowner"
    INSTALLER = "installer"
    MACHINE = "machine"
    TOKEN = "token"
    DEVICE = "device"


PEOPLE = frozenset({Kind.OPERATOR, Kind.HOMEOWNER, Kind.INSTALLER})
# Kinds whose reach is a set of installations rather than group paths.
BOUND = frozenset({Kind.HOMEOWNER, Kind.INSTALLER})


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


ROLE_SCOPE: dict[Role, Scope] = {Role.VIEWER: Scope.READ, Role.OPERATOR: Scope.COMMAND, Role.ADMIN: Scope.ADMIN}
# What a homeowner may do to their installations, and an installer at their sites (the rule table
# says which methods; these say how far).
KIND_SCOPES: dict[Kind, frozenset[Scope]] = {
    Kind.HOMEOWNER: frozenset({Scope.READ, Scope.COMMAND}),
    Kind.INSTALLER: frozenset({Scope.READ, Scope.COMMAND, Scope.ADMIN}),
}


@dataclass(frozen=True)
class ApiPrincipal:
    """A caller with an `authorization: Bearer` credential. `principal_id`: the user id for a
    person, else the token or client id; `credential_id`: the token, session or client token that
    authenticated this call (Logout revokes it)."""

    principal_id: PrincipalId
    name: str
    scopes: frozenset[Scope]
    allowed_paths: tuple[GroupPath, ...]
    expires_unix_ms: int | None = None
    kind: Kind = Kind.TOKEN
    role: Role | None = None
    installation_ids: tuple[InstallationId, ...] = ()
    credential: str = "token"          # "token", "session", "client"
    credential_id: str = ""

    @property
    def actor(self) -> str:
        prefix = {Kind.MACHINE: "client", Kind.TOKEN: "token"}.get(self.kind, "user")
        return f"{prefix}:{self.principal_id}"

    @property
    def is_person(self) -> bool:
        return self.kind in PEOPLE


@dataclass(frozen=True)
class DevicePrincipal:
    device_id: DeviceId
    installation_id: InstallationId

    kind = Kind.DEVICE

    @property
    def actor(self) -> str:
        return f"device:{self.device_id}"


Principal = ApiPrincipal | DevicePrincipal


@dataclass(frozen=True)
class Denied:
    reason: str


@dataclass(frozen=True)
class Visibility:
    """The installations a principal sees: all of them, the members of `paths` at any depth, or
    (a device, a homeowner, an installer) exactly `installation_ids`."""

    everything: bool = False
    paths: tuple[GroupPath, ...] = ()
    installation_ids: tuple[InstallationId, ...] | None = None
