"""Errors the assets service raises to its callers: the kernel's (gridtwin/errors.py), which
`gridtwin.grpc_server.observing` maps to status codes in one place.

Rules return rejections as values (`enrollment.Rejected`, `access.rules.Denied`); the layers
that call them raise these.
"""

from __future__ import annotations

from gridtwin.errors import (
    AlreadyExists,
    FailedPrecondition,
    GridtwinError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

AssetError = GridtwinError   # the name the assets code and its tests know

__all__ = ["AlreadyExists", "AssetError", "FailedPrecondition", "InvalidArgument", "NotFound",
           "PermissionDenied", "Unauthenticated"]
