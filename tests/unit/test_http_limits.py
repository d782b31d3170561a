"""Rate limits, entity tags and CSRF tokens of the HTTP API (services/http/limits.py)."""

from __future__ import annotations

from services.http.limits import RateLimiter, csrf_ok, csrf_token, etag, matches


def test_token_bucket_admits_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", 0.0) == 0.5
    assert limiter.take("b", 0.0) == 0.0          # each principal its own bucket
    assert limiter.take("a", 0.5) == 0.0          # refilled one token
    assert limiter.take("a", 0.5) > 0.0


def test_buckets_are_bounded() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_keys=10)
    for i in range(100):
        limiter.take(str(i), 0.0)
    assert len(limiter._buckets) == 10


def test_etags_are_strong_and_compare() -> None:
    tag = etag(b'{"a":1}')
    assert tag.startswith('"') and tag == etag(b'{"a":1}') and tag != etag(b'{"a":2}')
    assert matches(tag, tag) and matches(f'"x", W/{tag}', tag) and matches("*", tag) and not matches('"x"', tag)


def test_csrf_token_is_bound_to_the_session() -> None:
    token = csrf_token("session-a")
    assert csrf_ok("session-a", token) and not csrf_ok("session-b", token) and not csrf_ok("session-a", "")
