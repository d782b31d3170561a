from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Principal(_message.Message):
    __slots__ = ("kind", "principal_id", "name", "role", "scopes", "allowed_paths", "installation_ids", "expires_unix_ms")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Principal.Kind]
        OPERATOR: _ClassVar[Principal.Kind]
        HOMEOWNER: _ClassVar[Principal.Kind]
        INSTALLER: _ClassVar[Principal.Kind]
        MACHINE: _ClassVar[Principal.Kind]
        TOKEN: _ClassVar[Principal.Kind]
        DEVICE: _ClassVar[Principal.Kind]
    KIND_UNSPECIFIED: Principal.Kind
    OPERATOR: Principal.Kind
    HOMEOWNER: Principal.Kind
    INSTALLER: Principal.Kind
    MACHINE: Principal.Kind
    TOKEN: Principal.Kind
    DEVICE: Principal.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PATHS_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_IDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    kind: Principal.Kind
    principal_id: str
    name: str
    role: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    allowed_paths: _containers.RepeatedScalarFieldContainer[str]
    installation_ids: _containers.RepeatedScalarFieldContainer[str]
    expires_unix_ms: int
    def __init__(self, kind: _Optional[_Union[Principal.Kind, str]] = ..., principal_id: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., allowed_paths: _Optional[_Iterable[str]] = ..., installation_ids: _Optional[_Iterable[str]] = ..., expires_unix_ms: _Optional[int] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("user_id", "username", "kind", "role", "allowed_paths", "installation_ids", "email", "disabled", "created_unix_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PATHS_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_IDS_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    username: str
    kind: Principal.Kind
    role: str
    allowed_paths: _containers.RepeatedScalarFieldContainer[str]
    installation_ids: _containers.RepeatedScalarFieldContainer[str]
    email: str
    disabled: bool
    created_unix_ms: int
    def __init__(self, user_id: _Optional[str] = ..., username: _Optional[str] = ..., kind: _Optional[_Union[Principal.Kind, str]] = ..., role: _Optional[str] = ..., allowed_paths: _Optional[_Iterable[str]] = ..., installation_ids: _Optional[_Iterable[str]] = ..., email: _Optional[str] = ..., disabled: _Optional[bool] = ..., created_unix_ms: _Optional[int] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class LoginWithIdentityRequest(_message.Message):
    __slots__ = ("id_token", "nonce")
    ID_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    id_token: str
    nonce: str
    def __init__(self, id_token: _Optional[str] = ..., nonce: _Optional[str] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("token", "expires_unix_ms", "principal", "idle_timeout_s")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_unix_ms: int
    principal: Principal
    idle_timeout_s: int
    def __init__(self, token: _Optional[str] = ..., expires_unix_ms: _Optional[int] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ..., idle_timeout_s: _Optional[int] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LogoutReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("username", "password", "kind", "role", "allowed_paths", "installation_ids", "email")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PATHS_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_IDS_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    kind: Principal.Kind
    role: str
    allowed_paths: _containers.RepeatedScalarFieldContainer[str]
    installation_ids: _containers.RepeatedScalarFieldContainer[str]
    email: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., kind: _Optional[_Union[Principal.Kind, str]] = ..., role: _Optional[str] = ..., allowed_paths: _Optional[_Iterable[str]] = ..., installation_ids: _Optional[_Iterable[str]] = ..., email: _Optional[str] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DisableUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class InviteHomeownerRequest(_message.Message):
    __slots__ = ("installation_id", "email")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    email: str
    def __init__(self, installation_id: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class Invitation(_message.Message):
    __slots__ = ("code", "expires_unix_ms", "installation_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    expires_unix_ms: int
    installation_id: str
    def __init__(self, code: _Optional[str] = ..., expires_unix_ms: _Optional[int] = ..., installation_id: _Optional[str] = ...) -> None: ...

class AcceptInvitationRequest(_message.Message):
    __slots__ = ("code", "username", "password")
    CODE_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    code: str
    username: str
    password: str
    def __init__(self, code: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class CreatePasswordResetRequest(_message.Message):
    __slots__ = ("username",)
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    username: str
    def __init__(self, username: _Optional[str] = ...) -> None: ...

class PasswordReset(_message.Message):
    __slots__ = ("code", "expires_unix_ms")
    CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    code: str
    expires_unix_ms: int
    def __init__(self, code: _Optional[str] = ..., expires_unix_ms: _Optional[int] = ...) -> None: ...

class ResetPasswordRequest(_message.Message):
    __slots__ = ("code", "new_password")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    code: str
    new_password: str
    def __init__(self, code: _Optional[str] = ..., new_password: _Optional[str] = ...) -> None: ...

class ResetPasswordReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("name", "scopes", "allowed_paths", "expires_unix_ms", "standalone")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PATHS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    STANDALONE_FIELD_NUMBER: _ClassVar[int]
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    allowed_paths: _containers.RepeatedScalarFieldContainer[str]
    expires_unix_ms: int
    standalone: bool
    def __init__(self, name: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., allowed_paths: _Optional[_Iterable[str]] = ..., expires_unix_ms: _Optional[int] = ..., standalone: _Optional[bool] = ...) -> None: ...

class TokenInfo(_message.Message):
    __slots__ = ("token_id", "name", "scopes", "allowed_paths", "expires_unix_ms", "owner_user_id", "created_unix_ms", "revoked")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PATHS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    OWNER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    allowed_paths: _containers.RepeatedScalarFieldContainer[str]
    expires_unix_ms: int
    owner_user_id: str
    created_unix_ms: int
    revoked: bool
    def __init__(self, token_id: _Optional[str] = ..., name: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., allowed_paths: _Optional[_Iterable[str]] = ..., expires_unix_ms: _Optional[int] = ..., owner_user_id: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., revoked: _Optional[bool] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token", "info")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    token: str
    info: TokenInfo
    def __init__(self, token: _Optional[str] = ..., info: _Optional[_Union[TokenInfo, _Mapping]] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens", "next_page_token")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenInfo]
    next_page_token: str
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class CreateClientRequest(_message.Message):
    __slots__ = ("name", "scopes", "allowed_paths")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PATHS_FIELD_NUMBER: _ClassVar[int]
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    allowed_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., allowed_paths: _Optional[_Iterable[str]] = ...) -> None: ...

class Client(_message.Message):
    __slots__ = ("client_id", "client_secret", "name", "scopes", "allowed_paths")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PATHS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    client_secret: str
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    allowed_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., name: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., allowed_paths: _Optional[_Iterable[str]] = ...) -> None: ...

class IssueClientTokenRequest(_message.Message):
    __slots__ = ("client_id", "client_secret", "scope")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    client_secret: str
    scope: str
    def __init__(self, client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., scope: _Optional[str] = ...) -> None: ...

class ClientToken(_message.Message):
    __slots__ = ("access_token", "expires_in_s", "token_type", "scope")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    TOKEN_TYPE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    expires_in_s: int
    token_type: str
    scope: str
    def __init__(self, access_token: _Optional[str] = ..., expires_in_s: _Optional[int] = ..., token_type: _Optional[str] = ..., scope: _Optional[str] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("time_unix_ms", "actor", "method", "target", "code")
    TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    time_unix_ms: int
    actor: str
    method: str
    target: str
    code: str
    def __init__(self, time_unix_ms: _Optional[int] = ..., actor: _Optional[str] = ..., method: _Optional[str] = ..., target: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class ListAuditLogRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "actor", "method")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    actor: str
    method: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., actor: _Optional[str] = ..., method: _Optional[str] = ...) -> None: ...

class ListAuditLogResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
