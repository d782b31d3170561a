"""Logging and the Prometheus endpoint, set up once per process at its entry point."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop
from prometheus_client import start_http_server

T = TypeVar("T")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve_metrics(port: int) -> None:
    """Serves /metrics on `port` (0 = do not serve, e.g. in tests)."""
    if port:
        start_http_server(port)


def run_service(main: Coroutine[Any, Any, T]) -> T:
    """Runs a service's main coroutine on uvloop with garbage collection tuned for throughput.

    A gateway holds ~10,000 connections' worth of long-lived objects; the default thresholds make
    full collections walk all of them several times a second, stalling every socket for hundreds
    of milliseconds. Objects alive at start are frozen out of collection and the young-generation
    threshold is raised, so collections are rarer and only look at young objects.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
