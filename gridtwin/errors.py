"""The one root of the errors gridtwin code raises to its callers, and the one table from gRPC
status codes to HTTP statuses that both the gRPC services and the HTTP API use.

    GridtwinError                 grpc_status          http_status  retriable
     ├── InvalidArgument          INVALID_ARGUMENT     400          no   (field → JSON pointer)
     ├── Unauthenticated          UNAUTHENTICATED      401          no
     ├── PermissionDenied         PERMISSION_DENIED    403          no
     ├── NotFound                 NOT_FOUND            404          no
     ├── AlreadyExists            ALREADY_EXISTS       409          no
     ├── Conflict                 ABORTED              409          no
     ├── FailedPrecondition       FAILED_PRECONDITION  400 (9457: 'about:blank' detail says why)
     ├── ResourceExhausted        RESOURCE_EXHAUSTED   429          yes, after retry_after_s
     ├── Unavailable              UNAVAILABLE          503          yes

`str(error)` is safe to show to the caller: it never carries a stack, a query or a secret.
Storage adapters translate their library's exceptions at their boundary
(`raise Unavailable("asset storage unavailable") from exc`); `gridtwin.grpc_server.observing`
turns every GridtwinError into its status, in one place.
"""

from __future__ import annotations

import grpc

# gRPC status → HTTP status (the mapping of google.rpc.Code used by grpc-gateway / Google APIs).
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
# Codes a client may retry unchanged (after a backoff).
RETRIABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                       grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED})


def http_status(code: grpc.StatusCode) -> int:
    return HTTP_STATUS.get(code, 500)


def json_pointer(field: str) -> str:
    """The RFC 6901 pointer of a request field as our messages name it: `center.latitude_deg`,
    `scopes[2]` → `/center/latitude_deg`, `/scopes/2`."""
    if not field:
        return ""
    parts = field.replace("[", ".").replace("]", "").split(".")
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts if p)


class GridtwinError(Exception):
    """Root of the errors raised to callers; the class says the status, the message says why."""

    grpc_status: grpc.StatusCode = grpc.StatusCode.INTERNAL

    @property
    def http_status(self) -> int:
        return http_status(self.grpc_status)

    @property
    def retriable(self) -> bool:
        return self.grpc_status in RETRIABLE


class InvalidArgument(GridtwinError):
    """Bad input; `field` names the request field at fault (`scopes[2]`, "" = the request)."""

    grpc_status = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field

    @property
    def pointer(self) -> str:
        return json_pointer(self.field)


class Unauthenticated(GridtwinError):
    grpc_status = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(GridtwinError):
    grpc_status = grpc.StatusCode.PERMISSION_DENIED


class NotFound(GridtwinError):
    grpc_status = grpc.StatusCode.NOT_FOUND


class AlreadyExists(GridtwinError):
    grpc_status = grpc.StatusCode.ALREADY_EXISTS


class Conflict(GridtwinError):
    """A concurrent change won (e.g. a stale revision); retrying after re-reading may succeed."""

    grpc_status = grpc.StatusCode.ABORTED


class FailedPrecondition(GridtwinError):
    """A legal request the current state refuses (a used code, a transition not allowed)."""

    grpc_status = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(GridtwinError):
    """A limit was hit (rate, lockout, size); `retry_after_s` says when trying again makes sense."""

    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(GridtwinError):
    """A dependency (storage, broker) is down or unreachable: the same call may succeed later."""

    grpc_status = grpc.StatusCode.UNAVAILABLE
