"""Logging and the Prometheus endpoint, set up once per process at its entry point."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve_metrics(port: int) -> None:
    """Serves /metrics on `port` (0 = do not serve, e.g. in tests)."""
    if port:
        start_http_server(port)
