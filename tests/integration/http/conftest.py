"""The HTTP API's tests share one platform (http_support.http_world), started before the first
of them and stopped after the last, so the rest of the suite does not carry it."""

from tests.integration.http.http_support import http_world  # noqa: F401
