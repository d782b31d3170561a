"""The twin runtime fixture for hostile tests that need Ray (the VppService sends events to twins)."""

from tests.integration.twins_support import twins  # noqa: F401
