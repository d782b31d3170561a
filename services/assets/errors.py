"""Errors the assets service raises to its callers; `api.py` maps each to one gRPC status code.

    AssetError
     ├── InvalidArgument      bad input: ids, ltree labels, coordinates, polygons, ranges
     ├── NotFound             an id or path that does not exist
     ├── AlreadyExists        a duplicate id, serial or group path
     ├── FailedPrecondition   a legal request the current state refuses (enrollment transitions)
     ├── Unauthenticated      no, an unknown, an expired or a revoked credential
     └── PermissionDenied     a scope the principal lacks, or a path outside its groups

Rules return rejections as values (`enrollment.Rejected`, `access.Denied`); the layers that
call them raise these.
"""

from __future__ import annotations


class AssetError(Exception):
    """Root of the assets service's errors; `str(error)` is safe to show to the caller."""


class InvalidArgument(AssetError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class NotFound(AssetError):
    pass


class AlreadyExists(AssetError):
    pass


class FailedPrecondition(AssetError):
    pass


class Unauthenticated(AssetError):
    pass


class PermissionDenied(AssetError):
    pass
