"""Fixtures of the integration tests that live with their helpers."""

from tests.integration.twins_support import twins  # noqa: F401
