from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_STORMWATCH_FIRST: _ClassVar[Priority]
    PRIORITY_VPP_FIRST: _ClassVar[Priority]

class DeviceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_KIND_UNSPECIFIED: _ClassVar[DeviceKind]
    DEVICE_KIND_GATEWAY: _ClassVar[DeviceKind]
    DEVICE_KIND_BATTERY: _ClassVar[DeviceKind]
    DEVICE_KIND_SOLAR_INVERTER: _ClassVar[DeviceKind]
    DEVICE_KIND_METER: _ClassVar[DeviceKind]

class EnrollmentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENROLLMENT_STATE_UNSPECIFIED: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_UNENROLLED: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_ELIGIBLE: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_PENDING: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_ENROLLED: _ClassVar[EnrollmentState]

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_READ: _ClassVar[Scope]
    SCOPE_COMMAND: _ClassVar[Scope]
    SCOPE_ADMIN: _ClassVar[Scope]

class Relation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RELATION_DESCENDANTS: _ClassVar[Relation]
    RELATION_ANCESTORS: _ClassVar[Relation]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_STORMWATCH_FIRST: Priority
PRIORITY_VPP_FIRST: Priority
DEVICE_KIND_UNSPECIFIED: DeviceKind
DEVICE_KIND_GATEWAY: DeviceKind
DEVICE_KIND_BATTERY: DeviceKind
DEVICE_KIND_SOLAR_INVERTER: DeviceKind
DEVICE_KIND_METER: DeviceKind
ENROLLMENT_STATE_UNSPECIFIED: EnrollmentState
ENROLLMENT_STATE_UNENROLLED: EnrollmentState
ENROLLMENT_STATE_ELIGIBLE: EnrollmentState
ENROLLMENT_STATE_PENDING: EnrollmentState
ENROLLMENT_STATE_ENROLLED: EnrollmentState
SCOPE_UNSPECIFIED: Scope
SCOPE_READ: Scope
SCOPE_COMMAND: Scope
SCOPE_ADMIN: Scope
RELATION_DESCENDANTS: Relation
RELATION_ANCESTORS: Relation

class GeoPoint(_message.Message):
    __slots__ = ("longitude_deg", "latitude_deg")
    LONGITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    longitude_deg: float
    latitude_deg: float
    def __init__(self, longitude_deg: _Optional[float] = ..., latitude_deg: _Optional[float] = ...) -> None: ...

class Customer(_message.Message):
    __slots__ = ("customer_id", "name", "email")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    name: str
    email: str
    def __init__(self, customer_id: _Optional[str] = ..., name: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class Installation(_message.Message):
    __slots__ = ("installation_id", "customer_id", "location", "address", "time_zone", "utility", "battery_nominal_energy_wh", "max_charge_power_w", "max_discharge_power_w", "backup_reserve_pct", "stormwatch_enabled", "priority")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    UTILITY_FIELD_NUMBER: _ClassVar[int]
    BATTERY_NOMINAL_ENERGY_WH_FIELD_NUMBER: _ClassVar[int]
    MAX_CHARGE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    MAX_DISCHARGE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    BACKUP_RESERVE_PCT_FIELD_NUMBER: _ClassVar[int]
    STORMWATCH_ENABLED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    customer_id: str
    location: GeoPoint
    address: str
    time_zone: str
    utility: str
    battery_nominal_energy_wh: float
    max_charge_power_w: float
    max_discharge_power_w: float
    backup_reserve_pct: float
    stormwatch_enabled: bool
    priority: Priority
    def __init__(self, installation_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., location: _Optional[_Union[GeoPoint, _Mapping]] = ..., address: _Optional[str] = ..., time_zone: _Optional[str] = ..., utility: _Optional[str] = ..., battery_nominal_energy_wh: _Optional[float] = ..., max_charge_power_w: _Optional[float] = ..., max_discharge_power_w: _Optional[float] = ..., backup_reserve_pct: _Optional[float] = ..., stormwatch_enabled: _Optional[bool] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("device_id", "serial", "kind", "firmware", "installation_id", "revoked", "created_unix_ms")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    serial: str
    kind: DeviceKind
    firmware: str
    installation_id: str
    revoked: bool
    created_unix_ms: int
    def __init__(self, device_id: _Optional[str] = ..., serial: _Optional[str] = ..., kind: _Optional[_Union[DeviceKind, str]] = ..., firmware: _Optional[str] = ..., installation_id: _Optional[str] = ..., revoked: _Optional[bool] = ..., created_unix_ms: _Optional[int] = ...) -> None: ...

class Group(_message.Message):
    __slots__ = ("path", "display_name", "program")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    path: str
    display_name: str
    program: str
    def __init__(self, path: _Optional[str] = ..., display_name: _Optional[str] = ..., program: _Optional[str] = ...) -> None: ...

class Membership(_message.Message):
    __slots__ = ("installation_id", "path")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    path: str
    def __init__(self, installation_id: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class EnrollmentChange(_message.Message):
    __slots__ = ("installation_id", "program", "from_state", "to_state", "actor", "at_unix_ms", "reason")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    program: str
    from_state: EnrollmentState
    to_state: EnrollmentState
    actor: str
    at_unix_ms: int
    reason: str
    def __init__(self, installation_id: _Optional[str] = ..., program: _Optional[str] = ..., from_state: _Optional[_Union[EnrollmentState, str]] = ..., to_state: _Optional[_Union[EnrollmentState, str]] = ..., actor: _Optional[str] = ..., at_unix_ms: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class Enrollment(_message.Message):
    __slots__ = ("installation_id", "program", "state")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    program: str
    state: EnrollmentState
    def __init__(self, installation_id: _Optional[str] = ..., program: _Optional[str] = ..., state: _Optional[_Union[EnrollmentState, str]] = ...) -> None: ...

class CreateCustomerRequest(_message.Message):
    __slots__ = ("customer_id", "name", "email")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    name: str
    email: str
    def __init__(self, customer_id: _Optional[str] = ..., name: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class GetCustomerRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class CreateInstallationRequest(_message.Message):
    __slots__ = ("installation", "group_paths")
    INSTALLATION_FIELD_NUMBER: _ClassVar[int]
    GROUP_PATHS_FIELD_NUMBER: _ClassVar[int]
    installation: Installation
    group_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, installation: _Optional[_Union[Installation, _Mapping]] = ..., group_paths: _Optional[_Iterable[str]] = ...) -> None: ...

class GetInstallationRequest(_message.Message):
    __slots__ = ("installation_id",)
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    def __init__(self, installation_id: _Optional[str] = ...) -> None: ...

class UpdateInstallationSettingsRequest(_message.Message):
    __slots__ = ("installation_id", "backup_reserve_pct", "stormwatch_enabled", "priority")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    BACKUP_RESERVE_PCT_FIELD_NUMBER: _ClassVar[int]
    STORMWATCH_ENABLED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    backup_reserve_pct: float
    stormwatch_enabled: bool
    priority: Priority
    def __init__(self, installation_id: _Optional[str] = ..., backup_reserve_pct: _Optional[float] = ..., stormwatch_enabled: _Optional[bool] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class SearchInstallationsInBoxRequest(_message.Message):
    __slots__ = ("min_longitude_deg", "min_latitude_deg", "max_longitude_deg", "max_latitude_deg", "page_size", "page_token")
    MIN_LONGITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    MIN_LATITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    MAX_LONGITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    MAX_LATITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    min_longitude_deg: float
    min_latitude_deg: float
    max_longitude_deg: float
    max_latitude_deg: float
    page_size: int
    page_token: str
    def __init__(self, min_longitude_deg: _Optional[float] = ..., min_latitude_deg: _Optional[float] = ..., max_longitude_deg: _Optional[float] = ..., max_latitude_deg: _Optional[float] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SearchInstallationsInPolygonRequest(_message.Message):
    __slots__ = ("polygon_wkt", "page_size", "page_token")
    POLYGON_WKT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    polygon_wkt: str
    page_size: int
    page_token: str
    def __init__(self, polygon_wkt: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SearchInstallationsResponse(_message.Message):
    __slots__ = ("installations", "next_page_token")
    INSTALLATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    installations: _containers.RepeatedCompositeFieldContainer[Installation]
    next_page_token: str
    def __init__(self, installations: _Optional[_Iterable[_Union[Installation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SearchInstallationsNearRequest(_message.Message):
    __slots__ = ("center", "radius_m", "limit", "page_size", "page_token")
    CENTER_FIELD_NUMBER: _ClassVar[int]
    RADIUS_M_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    center: GeoPoint
    radius_m: float
    limit: int
    page_size: int
    page_token: str
    def __init__(self, center: _Optional[_Union[GeoPoint, _Mapping]] = ..., radius_m: _Optional[float] = ..., limit: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class InstallationDistance(_message.Message):
    __slots__ = ("installation", "distance_m")
    INSTALLATION_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    installation: Installation
    distance_m: float
    def __init__(self, installation: _Optional[_Union[Installation, _Mapping]] = ..., distance_m: _Optional[float] = ...) -> None: ...

class SearchInstallationsNearResponse(_message.Message):
    __slots__ = ("installations", "next_page_token")
    INSTALLATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    installations: _containers.RepeatedCompositeFieldContainer[InstallationDistance]
    next_page_token: str
    def __init__(self, installations: _Optional[_Iterable[_Union[InstallationDistance, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RegisterDeviceRequest(_message.Message):
    __slots__ = ("installation_id", "serial", "kind", "firmware", "device_id")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    serial: str
    kind: DeviceKind
    firmware: str
    device_id: str
    def __init__(self, installation_id: _Optional[str] = ..., serial: _Optional[str] = ..., kind: _Optional[_Union[DeviceKind, str]] = ..., firmware: _Optional[str] = ..., device_id: _Optional[str] = ...) -> None: ...

class RegisterDeviceResponse(_message.Message):
    __slots__ = ("device", "credential")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    device: Device
    credential: str
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., credential: _Optional[str] = ...) -> None: ...

class GetDeviceRequest(_message.Message):
    __slots__ = ("device_id",)
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    def __init__(self, device_id: _Optional[str] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ("installation_id", "page_size", "page_token")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    page_size: int
    page_token: str
    def __init__(self, installation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices", "next_page_token")
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    next_page_token: str
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeDeviceRequest(_message.Message):
    __slots__ = ("device_id",)
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    def __init__(self, device_id: _Optional[str] = ...) -> None: ...

class RotateDeviceCredentialRequest(_message.Message):
    __slots__ = ("device_id", "grace_s")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_S_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    grace_s: float
    def __init__(self, device_id: _Optional[str] = ..., grace_s: _Optional[float] = ...) -> None: ...

class RotateDeviceCredentialResponse(_message.Message):
    __slots__ = ("device", "credential", "previous_valid_until_unix_ms")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VALID_UNTIL_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    device: Device
    credential: str
    previous_valid_until_unix_ms: int
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., credential: _Optional[str] = ..., previous_valid_until_unix_ms: _Optional[int] = ...) -> None: ...

class CreateDeviceClaimRequest(_message.Message):
    __slots__ = ("installation_id", "serial", "kind", "firmware", "device_id", "ttl_s")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    serial: str
    kind: DeviceKind
    firmware: str
    device_id: str
    ttl_s: float
    def __init__(self, installation_id: _Optional[str] = ..., serial: _Optional[str] = ..., kind: _Optional[_Union[DeviceKind, str]] = ..., firmware: _Optional[str] = ..., device_id: _Optional[str] = ..., ttl_s: _Optional[float] = ...) -> None: ...

class CreateDeviceClaimResponse(_message.Message):
    __slots__ = ("device", "claim_code", "expires_unix_ms")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CLAIM_CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    device: Device
    claim_code: str
    expires_unix_ms: int
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., claim_code: _Optional[str] = ..., expires_unix_ms: _Optional[int] = ...) -> None: ...

class ClaimDeviceRequest(_message.Message):
    __slots__ = ("claim_code",)
    CLAIM_CODE_FIELD_NUMBER: _ClassVar[int]
    claim_code: str
    def __init__(self, claim_code: _Optional[str] = ...) -> None: ...

class ClaimDeviceResponse(_message.Message):
    __slots__ = ("device", "credential")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    device: Device
    credential: str
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., credential: _Optional[str] = ...) -> None: ...

class CreateGroupRequest(_message.Message):
    __slots__ = ("path", "display_name")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    path: str
    display_name: str
    def __init__(self, path: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class ListGroupsRequest(_message.Message):
    __slots__ = ("path", "relation", "page_size", "page_token")
    PATH_FIELD_NUMBER: _ClassVar[int]
    RELATION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    path: str
    relation: Relation
    page_size: int
    page_token: str
    def __init__(self, path: _Optional[str] = ..., relation: _Optional[_Union[Relation, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListGroupsResponse(_message.Message):
    __slots__ = ("groups", "next_page_token")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[Group]
    next_page_token: str
    def __init__(self, groups: _Optional[_Iterable[_Union[Group, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AddToGroupRequest(_message.Message):
    __slots__ = ("installation_id", "path")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    path: str
    def __init__(self, installation_id: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class RemoveFromGroupRequest(_message.Message):
    __slots__ = ("installation_id", "path")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    path: str
    def __init__(self, installation_id: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class ListGroupInstallationsRequest(_message.Message):
    __slots__ = ("path", "page_size", "page_token")
    PATH_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    path: str
    page_size: int
    page_token: str
    def __init__(self, path: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListGroupInstallationsResponse(_message.Message):
    __slots__ = ("installation_ids", "next_page_token")
    INSTALLATION_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    installation_ids: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    def __init__(self, installation_ids: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListInstallationGroupsRequest(_message.Message):
    __slots__ = ("installation_id",)
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    def __init__(self, installation_id: _Optional[str] = ...) -> None: ...

class CreateProgramRequest(_message.Message):
    __slots__ = ("path", "display_name")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    path: str
    display_name: str
    def __init__(self, path: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class ChangeEnrollmentRequest(_message.Message):
    __slots__ = ("installation_id", "program", "target", "reason")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    program: str
    target: EnrollmentState
    reason: str
    def __init__(self, installation_id: _Optional[str] = ..., program: _Optional[str] = ..., target: _Optional[_Union[EnrollmentState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class GetEnrollmentRequest(_message.Message):
    __slots__ = ("installation_id", "program")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    program: str
    def __init__(self, installation_id: _Optional[str] = ..., program: _Optional[str] = ...) -> None: ...

class ListEnrollmentHistoryRequest(_message.Message):
    __slots__ = ("installation_id", "program")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    program: str
    def __init__(self, installation_id: _Optional[str] = ..., program: _Optional[str] = ...) -> None: ...

class ListEnrollmentHistoryResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[EnrollmentChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[EnrollmentChange, _Mapping]]] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("name", "scopes", "allowed_paths", "expires_unix_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PATHS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[Scope]
    allowed_paths: _containers.RepeatedScalarFieldContainer[str]
    expires_unix_ms: int
    def __init__(self, name: _Optional[str] = ..., scopes: _Optional[_Iterable[_Union[Scope, str]]] = ..., allowed_paths: _Optional[_Iterable[str]] = ..., expires_unix_ms: _Optional[int] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("principal_id", "token")
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    principal_id: str
    token: str
    def __init__(self, principal_id: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("principal_id",)
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    principal_id: str
    def __init__(self, principal_id: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ("principal_id",)
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    principal_id: str
    def __init__(self, principal_id: _Optional[str] = ...) -> None: ...
