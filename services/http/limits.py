"""Pure pieces of the HTTP edge: rate limits, entity tags, CSRF tokens, principal keys.

Each function takes the clock as an argument where time matters, so the tests drive them
without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at_s: float


class RateLimiter:
    """A token bucket per key: `rate_per_s` refill, `burst` capacity. At most `max_keys` buckets
    are kept (the least recently used are forgotten: a forgotten key starts full again, which
    only ever errs towards admitting)."""

    def __init__(self, rate_per_s: float, burst: int, *, max_keys: int = 100_000) -> None:
        self._rate, self._burst, self._max = rate_per_s, float(burst), max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now_s: float) -> float:
        """0.0 when a request of `key` is admitted now, else the seconds until one would be."""
        bucket = self._buckets.pop(key, None) or _Bucket(self._burst, now_s)
        bucket.tokens = min(self._burst, bucket.tokens + (now_s - bucket.at_s) * self._rate)
        bucket.at_s = now_s
        self._buckets[key] = bucket
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate if self._rate > 0 else 3_600.0


def etag(body: bytes) -> str:
    """A strong entity tag: a hash of the exact bytes sent."""
    return '"' + base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:18]).decode() + '"'


def matches(if_none_match: str, tag: str) -> bool:
    """Does an If-None-Match header name `tag`? (Weak comparison, as RFC 9110 asks for GET.)"""
    if if_none_match.strip() == "*":
        return True
    return any(candidate.strip().removeprefix("W/") == tag for candidate in if_none_match.split(","))


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: a hash of the session token, which a page reads from the
    login answer (or its readable cookie) and echoes in X-CSRF-Token. A cross-site page cannot
    compute it, since the session cookie is HttpOnly; replicas agree without a shared secret."""
    digest = hashlib.sha256(b"gridtwin-csrf\x00" + session_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_ok(session_token: str, presented: str) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(session_token), presented)


def principal_key(credential: str) -> str:
    """Who is calling, for limits and idempotency, without keeping the credential itself."""
    return hashlib.sha256(credential.encode()).hexdigest()[:32]
