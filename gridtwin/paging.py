"""Page tokens of keyset pagination, shared by the services that page by (time, id).

A token names the last row of a page, (microseconds, id), opaque to clients. Parsing refuses
anything that is not one, including keys Postgres would refuse (a bigint out of range, a NUL in
the id), so a forged token is a clear INVALID_ARGUMENT, never a database error.
"""

from __future__ import annotations

import base64

_INT64 = range(-(2**63), 2**63)


def page_token(us: int, key: str) -> str:
    return base64.urlsafe_b64encode(f"{us}|{key}".encode()).decode()


def parse_page_token(token: str) -> tuple[int, str]:
    """The (microseconds, id) a `page_token` stands for; ValueError when `token` is not one."""
    try:
        us, key = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
        value = int(us)
    except ValueError:   # binascii.Error and UnicodeDecodeError are ValueErrors too
        raise ValueError("malformed page_token") from None
    if value not in _INT64 or "\x00" in key:
        raise ValueError("malformed page_token")
    return value, key
