"""Page tokens of keyset pagination, shared by the services that page by (time, id), and
query-bound tokens (`query_page_token`) for lists with any sort key.

A token names the last row of a page, (microseconds, id), opaque to clients. Parsing refuses
anything that is not one, including keys Postgres would refuse (a bigint out of range, a NUL in
the id), so a forged token is a clear INVALID_ARGUMENT, never a database error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

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


def query_page_token(query: str, *key: str) -> str:
    """A token naming the last row of a page, `key` (its sort key and unique id), of `query`.

    `query` is a canonical text of the request's filters (not its page size): a token is good for
    the query that issued it only. The token carries a digest of both, so a token altered, cut or
    handed to another query is refused by `parse_query_page_token` rather than silently paging
    something else. The digest is an integrity check, not a secret: visibility is always applied
    by the query itself, whatever the token says.
    """
    body = json.dumps([_digest(query, key), *key], separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode()


def parse_query_page_token(token: str, query: str, parts: int) -> tuple[str, ...]:
    """The `parts` key strings a `query_page_token` of `query` stands for; ValueError otherwise."""
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
    except ValueError:   # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors too
        raise ValueError("malformed page_token") from None
    if (not isinstance(value, list) or len(value) != parts + 1
            or not all(isinstance(v, str) and "\x00" not in v for v in value)):
        raise ValueError("malformed page_token")
    digest, *key = value
    if not hmac.compare_digest(digest, _digest(query, tuple(key))):
        raise ValueError("page_token was altered or belongs to another query")
    return tuple(key)


def _digest(query: str, key: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps([query, *key]).encode()).hexdigest()[:24]
