"""The access context's use cases: logins and sessions, people, invitations, password resets,
personal access tokens, machine clients and the audit log. Each takes the caller (a Principal the
guard admitted, or nothing for the anonymous ones) and plain values, decides with the pure rules,
and raises gridtwin.errors for callers; SQL is the store's, hashing the passwords module's.

Guarantees: secrets (passwords, tokens, codes, client secrets) are returned once and stored only
hashed; a one-time code works once, even when two redemptions race (the row is locked); login
failures count per username and per source, and a locked key is refused before its password is
looked at; nobody grants more than they hold (scopes, paths, installations).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from gridtwin import unixtime
from gridtwin.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from gridtwin.settings import AccessSettings
from services.access import codes, identity, passwords, rules, throttle
from services.access.authentication import Authenticator
from services.access.guard import check_installation
from services.access.model import (
    BOUND,
    KIND_SCOPES,
    PEOPLE,
    ROLE_SCOPE,
    ApiPrincipal,
    Kind,
    Principal,
    Role,
    Scope,
    effective_scopes,
)
from services.access.store import AccessStore, AuditRecord, ClientRecord, CodeRecord, TokenRecord, User
from services.assets.model import GroupPath, InstallationId, PrincipalId
from services.assets.paths import parse_path
from services.assets.validation import parse_id

LOGINS = Counter("gridtwin_access_logins_total", "Password logins, by outcome (ok, failed, locked, disabled)",
                 ["outcome"])
IDENTITY_LOGINS = Counter("gridtwin_access_identity_logins_total",
                          "OIDC logins, by outcome (ok, rejected, unlinked, provisioned, disabled)", ["outcome"])
LOCKOUTS = Counter("gridtwin_access_lockouts_total", "Usernames or sources locked after repeated login failures",
                   ["key"])

USERNAME = re.compile(r"[a-z0-9._@-]{3,64}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}")
MAX_PAGE = 1_000
DEFAULT_PAGE = 100


@dataclass(frozen=True)
class Session:
    token: str
    expires_unix_ms: int
    idle_timeout_s: int
    principal: ApiPrincipal


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_unix_ms: int


@dataclass(frozen=True)
class IssuedClient:
    client: ClientRecord
    secret: str


@dataclass(frozen=True)
class ClientToken:
    access_token: str
    expires_in_s: int
    scopes: frozenset[Scope]


def person_principal(user: User, *, credential: str = "session", credential_id: str = "",
                     expires_unix_ms: int | None = None) -> ApiPrincipal:
    """The principal a person's credential stands for (as services/access/authentication.py
    builds it from the database)."""
    scopes = (effective_scopes([ROLE_SCOPE[user.role]]) if user.kind is Kind.OPERATOR and user.role
              else KIND_SCOPES.get(user.kind, frozenset()))
    return ApiPrincipal(PrincipalId(user.user_id), user.username, scopes, user.allowed_paths, expires_unix_ms,
                        kind=user.kind, role=user.role, installation_ids=user.installation_ids,
                        credential=credential, credential_id=credential_id)


def parse_username(text: str, field: str = "username") -> str:
    name = text.strip().lower()
    if not USERNAME.fullmatch(name):
        raise InvalidArgument(field, "3–64 of a-z, 0-9 and . _ @ -")
    return name


def parse_email(text: str, field: str = "email", *, required: bool = False) -> str:
    email = text.strip()
    if not email and not required:
        return ""
    if not EMAIL.fullmatch(email):
        raise InvalidArgument(field, "an e-mail address (name@domain)")
    return email


def parse_scopes(values: Iterable[str], field: str = "scopes") -> frozenset[Scope]:
    scopes = set()
    for i, value in enumerate(values):
        try:
            scopes.add(Scope(value.strip().lower()))
        except ValueError:
            raise InvalidArgument(f"{field}[{i}]", "one of read, command, admin") from None
    return frozenset(scopes)


def parse_paths(values: Iterable[str], field: str = "allowed_paths") -> tuple[GroupPath, ...]:
    return tuple(dict.fromkeys(parse_path(p, f"{field}[{i}]", allow_root=True) for i, p in enumerate(values)))


def page_size(value: int, field: str = "page_size") -> int:
    if value > MAX_PAGE:
        raise InvalidArgument(field, f"at most {MAX_PAGE}")
    return value or DEFAULT_PAGE


def encode_page(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def decode_page(token: str, field: str = "page_token") -> str:
    if not token:
        return ""
    try:
        key = base64.urlsafe_b64decode(token.encode()).decode()
    except ValueError:
        raise InvalidArgument(field, "not a page token of this list") from None
    if "\x00" in key:
        raise InvalidArgument(field, "not a page token of this list")
    return key


def _denied(result: rules.Denied | None) -> None:
    if result is not None:
        raise PermissionDenied(result.reason)


def _api(principal: Principal) -> ApiPrincipal:
    if not isinstance(principal, ApiPrincipal):
        raise PermissionDenied("devices have no account")
    return principal


def _credential_name(name: str) -> str:
    """A token's or client's name, as people will read it in lists and the audit log."""
    name = name.strip()
    if not name or len(name) > 200 or "\x00" in name:
        raise InvalidArgument("name", "1–200 characters")
    return name


class Access:
    def __init__(self, store: AccessStore, authenticator: Authenticator, settings: AccessSettings) -> None:
        self.store = store
        self.authenticator = authenticator
        self.settings = settings
        self._provider_keys: identity.ProviderKeys | None = None   # made at the first OIDC login
        self.policy = throttle.ThrottlePolicy(settings.login_max_failures, settings.login_failure_window_s,
                                              settings.login_lockout_s)

    # ---------------------------------------------------------- sessions

    async def login(self, username: str, password: str, source: str) -> Session:
        """A new session for the person, or Unauthenticated (the same message for an unknown name
        and a wrong password), or ResourceExhausted while the name or the source is locked."""
        name = username.strip().lower()
        if not name:
            raise InvalidArgument("username", "required")
        if not password:
            raise InvalidArgument("password", "required")
        # NUL cannot be stored (and is in no username): the keys keep whatever else was sent
        keys = [f"user:{name[:64]}".replace("\x00", "?"), f"source:{source[:100]}".replace("\x00", "?")]
        now = unixtime.now_ms()
        states = await self.store.failures(keys)
        locked = [s for s in (throttle.locked_for_s(states[k], now) for k in keys if k in states) if s is not None]
        if locked:
            LOGINS.labels("locked").inc()
            wait_s = max(locked)
            raise ResourceExhausted(f"too many failed logins: locked, try again in {math.ceil(wait_s / 60)} min",
                                    retry_after_s=wait_s)
        user = await self.store.user_by_name(name) if USERNAME.fullmatch(name) else None
        # argon2 costs tens of milliseconds of CPU: off the event loop.
        matches = await asyncio.to_thread(passwords.verify, user.password_hash if user else None, password)
        if user is None or not matches:
            LOGINS.labels("failed").inc()
            after = {k: throttle.after_failure(states.get(k, throttle.Failures()), now, self.policy) for k in keys}
            for key, state in after.items():
                if throttle.locked_for_s(state, now) is not None:
                    LOCKOUTS.labels(key.split(":", 1)[0]).inc()
            await self.store.save_failures(after)
            raise Unauthenticated("wrong username or password")
        if user.disabled:
            LOGINS.labels("disabled").inc()
            raise FailedPrecondition("this account is disabled")
        LOGINS.labels("ok").inc()
        await self.store.clear_failures(keys[:1])
        if passwords.needs_rehash(user.password_hash):
            await self.store.rehash(user.user_id, await asyncio.to_thread(passwords.hash_password, password))
        return await self._open_session(user)

    async def login_with_identity(self, id_token: str, nonce: str) -> Session:
        """A session for the local user linked to the ID token's (issuer, subject): the token is
        checked first (services/access/identity.py), and an identity seen for the first time is
        linked or provisioned as `AccessSettings.oidc` says (its docstring has the policy)."""
        oidc = self.settings.oidc
        if not oidc.enabled:
            raise FailedPrecondition("login with an identity provider is not configured")
        if not id_token:
            raise InvalidArgument("id_token", "required")
        if not nonce:
            raise InvalidArgument("nonce", "required")
        if self._provider_keys is None:
            self._provider_keys = identity.ProviderKeys(
                oidc.issuer, functools.partial(identity.http_fetch_json, timeout_s=oidc.http_timeout_s),
                cache_s=oidc.jwks_cache_s, clock=time.monotonic)
        outcome = await identity.verify(id_token, self._provider_keys, issuer=oidc.issuer, client_id=oidc.client_id,
                                        nonce=nonce, now_s=unixtime.now_ms() / 1_000, leeway_s=oidc.clock_skew_s)
        if isinstance(outcome, identity.Rejected):
            IDENTITY_LOGINS.labels("rejected").inc()
            raise Unauthenticated(outcome.reason)
        user = await self.store.identity_user(outcome.issuer, outcome.subject) or await self._first_login(outcome)
        if user.disabled:
            IDENTITY_LOGINS.labels("disabled").inc()
            raise FailedPrecondition("this account is disabled")
        IDENTITY_LOGINS.labels("ok").inc()
        return await self._open_session(user)

    async def _first_login(self, found: identity.Identity) -> User:
        oidc = self.settings.oidc
        name = found.claim(oidc.username_claim).lower()
        user = await self.store.user_by_name(name) if USERNAME.fullmatch(name) else None
        if user is None and oidc.new_identities == "viewer" and USERNAME.fullmatch(name):
            email = found.claim("email")
            new = User(codes.new_id("usr"), name, Kind.OPERATOR, Role.VIEWER, parse_paths(oidc.viewer_paths), (),
                       email if EMAIL.fullmatch(email) else "", False, 0)
            try:
                await self.store.provision_identity(found.issuer, found.subject, new, f"oidc:{found.issuer}"[:200])
                IDENTITY_LOGINS.labels("provisioned").inc()
            except AlreadyExists:   # the name was taken, or this identity linked, meanwhile: as below
                user = await self.store.user_by_name(name)
        elif user is not None:
            await self.store.link_identity(found.issuer, found.subject, user.user_id)
        linked = await self.store.identity_user(found.issuer, found.subject)
        if linked is None:
            IDENTITY_LOGINS.labels("unlinked").inc()
            raise PermissionDenied("no local account is linked to this identity" if user is None else
                                   f"the local account {name!r} is linked to another identity of this provider")
        return linked

    async def _open_session(self, user: User) -> Session:
        token, session_id = codes.new_secret(codes.SESSION_TOKEN), codes.new_id("ses")
        expires = unixtime.now_ms() + round(self.settings.session_ttl_s * 1_000)
        await self.store.create_session(session_id, codes.sha256(token), user.user_id, expires,
                                        self.settings.session_idle_s)
        return Session(token, expires, self.settings.session_idle_s,
                       person_principal(user, credential_id=session_id, expires_unix_ms=expires))

    async def logout(self, caller: Principal) -> None:
        principal = _api(caller)
        if principal.credential != "session":
            raise FailedPrecondition("not a session: revoke a token with RevokeToken")
        await self.store.revoke_session(principal.credential_id)
        self.authenticator.forget(credential_id=principal.credential_id)

    # ---------------------------------------------------------- people

    async def _covers(self, caller: ApiPrincipal, user: User) -> None:
        """PermissionDenied unless the caller's reach includes the user's."""
        if user.kind is Kind.OPERATOR:
            _denied(rules.check_paths(caller, user.allowed_paths))
        else:
            for installation_id in user.installation_ids:
                await check_installation(self.store.pool, caller, installation_id)

    async def create_user(self, caller: Principal, username: str, password: str, kind: Kind | None, role: str,
                          allowed_paths: Sequence[str], installation_ids: Sequence[str], email: str) -> User:
        issuer = _api(caller)
        name = parse_username(username)
        passwords.check_policy(password)
        if kind not in PEOPLE:
            raise InvalidArgument("kind", "OPERATOR, HOMEOWNER or INSTALLER")
        assert kind is not None
        parsed_role: Role | None = None
        paths: tuple[GroupPath, ...] = ()
        homes: tuple[InstallationId, ...] = ()
        if kind is Kind.OPERATOR:
            try:
                parsed_role = Role(role)
            except ValueError:
                raise InvalidArgument("role", "viewer, operator or admin") from None
            paths = parse_paths(allowed_paths)
            if not paths:
                raise InvalidArgument("allowed_paths", 'at least one group path ("" = every group)')
            if installation_ids:
                raise InvalidArgument("installation_ids", "operators reach groups, not installations")
            _denied(rules.check_grant(issuer, [ROLE_SCOPE[parsed_role]], paths))
        else:
            if role:
                raise InvalidArgument("role", "only operators have a role")
            if allowed_paths:
                raise InvalidArgument("allowed_paths", "homeowners and installers reach installations, not groups")
            homes = tuple(dict.fromkeys(InstallationId(parse_id(i, f"installation_ids[{n}]"))
                                        for n, i in enumerate(installation_ids)))
            if not homes:
                raise InvalidArgument("installation_ids", "at least one installation")
            for installation_id in homes:
                await check_installation(self.store.pool, issuer, installation_id)
        user = User(codes.new_id("usr"), name, kind, parsed_role, paths, homes, parse_email(email), False, 0)
        hashed = await asyncio.to_thread(passwords.hash_password, password)
        return await self.store.create_user(user, hashed, issuer.actor)

    async def list_users(self, caller: Principal, size: int, page_token: str) -> tuple[list[User], str]:
        issuer = _api(caller)
        limit, after = page_size(size), decode_page(page_token)
        vis = rules.visibility(issuer)
        found = await self.store.list_users(after, limit + 1, None if vis.everything else vis.paths)
        more = len(found) > limit
        found = found[:limit]
        return found, encode_page(found[-1].username) if more else ""

    async def _user(self, user_id: str, field: str = "user_id") -> User:
        user = await self.store.user(parse_id(user_id, field))
        if user is None:
            raise NotFound(f"user {user_id!r} does not exist")
        return user

    async def disable_user(self, caller: Principal, user_id: str) -> User:
        issuer = _api(caller)
        user = await self._user(user_id)
        await self._covers(issuer, user)
        disabled = await self.store.disable_user(user.user_id)
        self.authenticator.forget(principal_id=user.user_id)
        assert disabled is not None
        return disabled

    # ---------------------------------------------------------- invitations and resets

    async def invite_homeowner(self, caller: Principal, installation_id: str, email: str) -> IssuedCode:
        issuer = _api(caller)
        home = parse_id(installation_id, "installation_id")
        address = parse_email(email)
        await check_installation(self.store.pool, issuer, home)
        code = codes.new_code()
        expires = unixtime.now_ms() + round(self.settings.invitation_ttl_s * 1_000)
        await self.store.create_code(codes.code_sha256(code), "invitation", expires, issuer.actor,
                                     installation_id=home, email=address)
        return IssuedCode(code, expires)

    async def accept_invitation(self, code: str, username: str, password: str) -> Session:
        """Creates the homeowner bound to the invitation's installation and logs them in; the code
        works once."""
        if not code.strip():
            raise InvalidArgument("code", "required")
        name = parse_username(username)
        passwords.check_policy(password)
        hashed = await asyncio.to_thread(passwords.hash_password, password)
        digest = codes.code_sha256(code)
        async with self.store.redeeming(digest, "invitation") as (con, record):
            self._usable(record, "invitation")
            assert record is not None and record.installation_id is not None
            user = User(codes.new_id("usr"), name, Kind.HOMEOWNER, None, (),
                        (InstallationId(record.installation_id),), record.email, False, 0)
            await self.store.insert_user(con, user, hashed, "invitation")
            await self.store.mark_used(con, digest)
        return await self._open_session(user)

    @staticmethod
    def _usable(record: CodeRecord | None, what: str) -> None:
        if record is None:
            raise Unauthenticated(f"unknown {what} code")
        if record.used:
            raise FailedPrecondition(f"this {what} code was used already")
        if record.expires_unix_ms <= unixtime.now_ms():
            raise FailedPrecondition(f"this {what} code has expired")

    async def create_password_reset(self, caller: Principal, username: str) -> IssuedCode:
        issuer = _api(caller)
        user = await self.store.user_by_name(parse_username(username))
        if user is None:
            raise NotFound(f"user {username!r} does not exist")
        await self._covers(issuer, user)
        code = codes.new_code()
        expires = unixtime.now_ms() + round(self.settings.reset_ttl_s * 1_000)
        await self.store.create_code(codes.code_sha256(code), "reset", expires, issuer.actor, user_id=user.user_id)
        return IssuedCode(code, expires)

    async def reset_password(self, code: str, new_password: str) -> None:
        """Sets the password; every session of the user ends, and a lockout of the name is lifted."""
        if not code.strip():
            raise InvalidArgument("code", "required")
        passwords.check_policy(new_password, "new_password")
        hashed = await asyncio.to_thread(passwords.hash_password, new_password)
        digest = codes.code_sha256(code)
        async with self.store.redeeming(digest, "reset") as (con, record):
            self._usable(record, "reset")
            assert record is not None and record.user_id is not None
            await self.store.set_password(con, record.user_id, hashed)
            await self.store.mark_used(con, digest)
        user = await self.store.user(record.user_id)
        if user is not None:
            await self.store.clear_failures([f"user:{user.username}"])
        self.authenticator.forget(principal_id=record.user_id)

    # ---------------------------------------------------------- personal access tokens

    async def create_token(self, caller: Principal, name: str, scopes: frozenset[Scope],
                           allowed_paths: tuple[GroupPath, ...], expires_unix_ms: int | None, *,
                           standalone: bool) -> tuple[str, TokenRecord]:
        """A person's own token (acting as them, with at most their scopes), or a standalone one
        over `allowed_paths`. Never more than the caller holds: scopes, paths, and a lifetime no
        longer than the caller's own credential. A person's standalone token outlives the
        person's account, so it needs the admin scope."""
        issuer = _api(caller)
        name = _credential_name(name)
        if not scopes:
            raise InvalidArgument("scopes", "at least one of read, command, admin")
        if expires_unix_ms is not None and expires_unix_ms <= unixtime.now_ms():
            raise InvalidArgument("expires_unix_ms", "in the past")
        mine = issuer.is_person and not standalone
        if mine:
            if allowed_paths:
                raise InvalidArgument("allowed_paths", "a person's token acts within the person's own reach")
            missing = set(scopes) - issuer.scopes
            if missing:
                raise PermissionDenied(f"cannot grant scopes you lack: {', '.join(sorted(missing))}")
        else:
            if issuer.is_person and Scope.ADMIN not in issuer.scopes:
                raise PermissionDenied("a person's standalone tokens need the admin scope")
            if issuer.kind in BOUND:
                raise PermissionDenied(f"{issuer.kind.value}s hold tokens of their own only")
            if not allowed_paths:
                raise InvalidArgument("allowed_paths", 'at least one group path ("" = every group)')
            _denied(rules.check_grant(issuer, scopes, allowed_paths))
            if not issuer.is_person and issuer.expires_unix_ms is not None:
                # a token's tokens end with it: a leaked short-lived credential buys nothing longer
                expires_unix_ms = min(expires_unix_ms or issuer.expires_unix_ms, issuer.expires_unix_ms)
        token = codes.new_secret(codes.PERSONAL_TOKEN)
        record = TokenRecord(codes.new_id("tok"), name, scopes, () if mine else allowed_paths, expires_unix_ms,
                             issuer.principal_id if mine else None, 0, False)
        return token, await self.store.create_token(record, codes.sha256(token), issuer.actor)

    async def list_tokens(self, caller: Principal, size: int, page_token: str) -> tuple[list[TokenRecord], str]:
        """The caller's own tokens and those it made; an admin also the standalone tokens within
        its paths."""
        issuer = _api(caller)
        limit, after = page_size(size), decode_page(page_token)
        owner = issuer.principal_id if issuer.is_person else None
        paths = issuer.allowed_paths if Scope.ADMIN in issuer.scopes and issuer.kind not in BOUND else None
        found = await self.store.list_tokens(after, limit + 1, owner_user_id=owner, created_by=issuer.actor,
                                             paths=paths)
        more = len(found) > limit
        found = found[:limit]
        return found, encode_page(found[-1].token_id) if more else ""

    async def revoke_token(self, caller: Principal, token_id: str, field: str = "token_id") -> str:
        """Revokes a token of the caller's own or one it made, or (admin) a standalone token within
        the caller's paths or a token of a person within the caller's reach. Idempotent."""
        issuer = _api(caller)
        record = await self.store.token(parse_id(token_id, field))
        if record is None:
            raise NotFound(f"token {token_id!r} does not exist")
        own = (record.owner_user_id is not None and record.owner_user_id == issuer.principal_id) \
            or record.created_by == issuer.actor
        if not own:
            if Scope.ADMIN not in issuer.scopes or issuer.kind in BOUND:
                raise PermissionDenied("only your own tokens (others' need the admin scope)")
            if record.owner_user_id is None:
                _denied(rules.check_paths(issuer, record.allowed_paths))
            else:
                await self._covers(issuer, await self._user(record.owner_user_id))
        await self.store.revoke_token(record.token_id)
        self.authenticator.forget(principal_id=record.token_id, credential_id=record.token_id)
        return record.token_id

    # ---------------------------------------------------------- machine clients

    async def create_client(self, caller: Principal, name: str, scopes: frozenset[Scope],
                            allowed_paths: tuple[GroupPath, ...]) -> IssuedClient:
        issuer = _api(caller)
        name = _credential_name(name)
        if not scopes:
            raise InvalidArgument("scopes", "at least one of read, command, admin")
        if not allowed_paths:
            raise InvalidArgument("allowed_paths", 'at least one group path ("" = every group)')
        _denied(rules.check_grant(issuer, scopes, allowed_paths))
        secret = codes.new_secret(codes.CLIENT_SECRET)
        client = ClientRecord(codes.new_id("cli"), name, codes.sha256(secret), scopes, allowed_paths, False)
        await self.store.create_client(client, issuer.actor)
        return IssuedClient(client, secret)

    async def issue_client_token(self, client_id: str, client_secret: str, scope: str) -> ClientToken:
        """OAuth 2.0 client credentials: a short-lived bearer token with the requested scopes
        (space-separated; "" = all the client's)."""
        if not client_id or "\x00" in client_id or len(client_id) > 128:
            raise Unauthenticated("invalid client credentials")
        client = await self.store.client(client_id)
        presented = codes.sha256(client_secret)
        if client is None or not hmac.compare_digest(client.secret_sha256, presented) or client.disabled:
            raise Unauthenticated("invalid client credentials")
        wanted = parse_scopes(scope.split(), "scope") if scope.strip() else client.scopes
        if not wanted <= effective_scopes(client.scopes):
            raise InvalidArgument("scope", f"this client may ask for {' '.join(sorted(client.scopes))}")
        token = codes.new_secret(codes.CLIENT_TOKEN)
        ttl_s = self.settings.client_token_ttl_s
        await self.store.create_client_token(codes.sha256(token), client.client_id, wanted,
                                             unixtime.now_ms() + ttl_s * 1_000)
        return ClientToken(token, ttl_s, wanted)

    # ---------------------------------------------------------- audit

    async def list_audit(self, caller: Principal, size: int, page_token: str, actor: str,
                         method: str) -> tuple[list[AuditRecord], str]:
        """Admins over every group see every entry; others the entries about installations and
        groups within their paths. This replica's queued entries are written first, so a caller
        reads its own writes."""
        issuer = _api(caller)
        limit = page_size(size)
        key = decode_page(page_token)
        try:
            before = int(key) if key else None
        except ValueError:
            raise InvalidArgument("page_token", "not a page token of this list") from None
        for name, value in (("actor", actor), ("method", method)):
            if "\x00" in value or len(value) > 200:
                raise InvalidArgument(name, "at most 200 characters, no NUL")
        if self.authenticator.audit is not None:
            await self.authenticator.audit.flush()
        vis = rules.visibility(issuer)
        found = await self.store.audit_entries(before, limit + 1, actor=actor, method=method,
                                               paths=None if vis.everything else vis.paths)
        more = len(found) > limit
        found = found[:limit]
        return found, encode_page(str(found[-1].entry_id)) if more else ""


async def ensure_user(store: AccessStore, username: str, password: str, kind: Kind, *, role: Role | None = None,
                      paths: Sequence[str] = (), installation_ids: Sequence[str] = (), email: str = "") -> User:
    """The user, created when missing (the demo accounts of `gridtwin up`); an existing one keeps
    its password."""
    found = await store.user_by_name(username)
    if found is not None:
        return found
    user = User(codes.new_id("usr"), username, kind, role, tuple(GroupPath(p) for p in paths),
                tuple(InstallationId(i) for i in installation_ids), email, False, 0)
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    try:
        return await store.create_user(user, hashed, "gridtwin up")
    except AlreadyExists:   # another process made it meanwhile
        again = await store.user_by_name(username)
        assert again is not None
        return again
